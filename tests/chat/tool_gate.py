"""Two events shared by a test and the functions file it loads as tools (the file
imports this module), so the test can wait for a tool to be running, then let it end."""

import threading

started = threading.Event()
release = threading.Event()
