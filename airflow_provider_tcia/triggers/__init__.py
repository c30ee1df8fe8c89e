"""Triggers: the sensors' deferrable side and the new-studies asset watcher."""
