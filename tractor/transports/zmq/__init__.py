"""``'zmq'``: frames over ZeroMQ (ZMTP 3 on the wire), driven by trio.

Addresses: ``zmq+tcp://host:port`` and ``zmq+ipc:///path/to.sock``.

One module per job:

:mod:`._rendezvous`
    :class:`ZMQTransport` and :class:`ZMQListener`: a ROUTER on the
    advertised address hands each dialer a fresh PAIR socket of its own
    (and why not one ROUTER for the data), the socket options, and
    ``accept()`` once a peer finished its handshake.
:mod:`._stream`
    :class:`ZMQFrameStream`: one exclusive PAIR to one peer; frames as
    zmq messages, frames in parts as multipart messages, peer loss from
    monitor events.
:mod:`._credit`
    :class:`CreditWindow`: flow control in bytes on top of zmq's
    high-water mark (which counts messages); pure accounting, no socket.
:mod:`._fdwait`
    :class:`ZSock`: many trio tasks waiting on one zmq socket (and its
    monitor) through a single fd wait, without threads or polling; the
    process-wide ``zmq.Context``.

Only Linux is supported (the per-stream epoll). Errors: only
TransportClosed / FrameTooLarge leave a stream.
"""
from ._credit import CreditWindow
from ._rendezvous import ZMQListener, ZMQTransport
from ._stream import ZMQFrameStream

__all__ = ['CreditWindow', 'ZMQFrameStream', 'ZMQListener', 'ZMQTransport']
