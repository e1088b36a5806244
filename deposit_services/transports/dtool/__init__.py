"""dtool datasets as a deposit target, registered in dserver (issue 20): ``dataset``
writes the frozen dataset, ``dserver`` talks to dserver, ``transport`` ties them
together, ``status`` re-checks a registration."""
