"""The AIL side: the ``QuaidImages`` module (imports AIL, so only importable inside AIL) and
``quaid-ail-start``, which starts it in AIL's running screen session."""
