"""The names of a connection's timers; each has at most one deadline at a time."""

RETRANSMIT = "retransmit"
PERSIST = "persist"  # zero-window probes
TIME_WAIT_TIMER = "time_wait"  # 2 x MSL
DELAYED_ACK = "delayed_ack"
SWS_OVERRIDE = "sws_override"  # sender silly-window avoidance
KEEPALIVE = "keepalive"
USER_TIMEOUT = "user_timeout"
