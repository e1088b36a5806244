"""The status-resolver port (``base``): the StatusResolver ABC, the state mapping and the
auth realms every protocol's resolver uses. Each protocol's resolver lives with its
protocol (SWORDv2: ``deposit_services.transports.sword.statement``)."""
