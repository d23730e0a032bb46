"""The sans-IO protocol core: no sockets, no clocks, no unseeded randomness.

Below it only wire/ (segments, sequence arithmetic) and cc/ (congestion control); nothing here imports
a driver, asyncio, the simulator, the views or the command line. Inside, each part reaches downward:

- leaves, importing nothing from core/: reasons, config, state (the transition table), ca_state,
  isn, limits, observe, window, reset, syncookies, send_buffer, recv_buffer, rtxqueue, trace;
- on leaves only: events and errors (reasons), rtt (config), timers (trace);
- the parts of one endpoint: receiver (events, recv_buffer), sender (events, ca_state, rtxqueue,
  send_buffer, timers), recovery (ca_state, rtxqueue), arrival (events, reasons, reset, state,
  timers, window, syncookies), time_wait (config, state, timers);
- connection, the endpoint, on all of the above.

The one way back up: receiver, sender, recovery, arrival and time_wait are handed the Connection they
work for and name its class under TYPE_CHECKING only, for annotations; none imports connection.py at
run time. tests/test_layering.py holds these rules.
"""
