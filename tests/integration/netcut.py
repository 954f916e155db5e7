"""A TCP relay on 127.0.0.1 that can cut the link it carries, as a partition does.

An agent is pointed at the relay instead of the controller. While the link is cut
the relay moves no byte in either direction and holds new connections unanswered
(a black hole: nothing is refused, nothing arrives; TCP keeps the bytes in its
buffers); when the cut ends, traffic flows again. No process is stopped: both
ends run on and must find out by themselves. Every thread is a daemon, every
socket closed by close()."""
import socket
import threading


class NetCut:
    def __init__(self, upstream_port, host="127.0.0.1"):
        self.upstream = (host, upstream_port)
        self.flowing = threading.Event()
        self.flowing.set()
        self.lock = threading.Lock()
        self.socks = []
        self.connections = 0
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((host, 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.endpoint = "tcp://%s:%d" % (host, self.port)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self):
        self.flowing.clear()

    def mend(self):
        self.flowing.set()

    def _keep(self, s):
        with self.lock:
            self.socks.append(s)

    def _accept(self):
        while not self.closed:
            try:
                down, _ = self.srv.accept()
            except OSError:
                return
            self._keep(down)
            threading.Thread(target=self._connect, args=(down,), daemon=True).start()

    def _connect(self, down):
        self.flowing.wait()  # a connection made during a cut goes nowhere until it ends
        try:
            up = socket.create_connection(self.upstream, timeout=5)
            up.settimeout(None)
        except OSError:
            down.close()
            return
        self._keep(up)
        with self.lock:
            self.connections += 1
        for a, b in ((down, up), (up, down)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        while True:
            self.flowing.wait()
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            self.flowing.wait()  # read before the cut, held until it ends
            try:
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closed = True
        self.flowing.set()
        self.srv.close()
        with self.lock:
            for s in self.socks:
                s.close()
