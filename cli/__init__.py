"""`lightsms-queue`, the operator's command line (main.py), and the operator actions it runs on
stored messages (operations.py). May import anything but `worker`."""
