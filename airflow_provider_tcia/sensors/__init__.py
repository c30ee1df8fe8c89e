"""Sensors: wait for new studies, new patients or any query result; poke, reschedule or deferrable."""
