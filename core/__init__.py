"""The core beneath the three roles (producers, worker, consumers), above the LightSMS client.

What every role shares, each in one place: settings (settings.py), Redis key names (keys.py), the
message states (states.py) and record (message.py), the store and its compare-and-set Lua scripts
(store.py, lua/: every script, the limiter's too), the contract between roles (contract.py: task
names, queues, payloads), counters (stats.py), the account pause (pause.py), the factory that
builds a LightSmsClient from settings (client.py) and the project's own error root (errors.py).
Settings come in two layers: CoreSettings for every process, Settings on top for the processes that
call LightSMS (only they read the credentials).
"""
