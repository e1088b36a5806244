"""NIHMS's "Bulk submission" emails as the status source of NIHMS file-drop deposits.

NIHMS takes bulk packages on an SFTP/FTP drop and reports what became of each package
only by email, hours later. A drop repository whose protocol-binding says
``"status-source": "nihms-email"`` records its deposits SUBMITTED with the status ref
``nihms-package:<package id>`` (``refs``); the reader (``reader``) takes the unseen
"Bulk submission" mails from NIHMS's sender out of an IMAPS folder (``imap``, behind
the ``mailbox.Mailbox`` port), parses their HTML (``parser``) and records what they say
(``applier``): one unit of work per mail, the mail flagged \\Seen only after it.
"""
