package reactor

import (
	"errors"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Direct socket writes, for the gnet engine.
//
// gnet buffers whatever the kernel refuses in a list of its own, without
// limit, and never says when that list has drained. With TCP_NOTSENT_LOWAT
// the kernel refuses early (that is the point: its unsent queue stays
// shallow), so through gnet's Write the bulk would pile up in gnet's list,
// behind which no urgent frame can overtake, and we would have to poll to
// learn when to send more. So the gnet transport writes to the socket
// itself, keeps what the kernel refused in a small buffer of its own
// (bounded by Config.EngineBuffer for lanes 2-3), and asks a writeWatcher
// to wake the connection's loop when the socket can take more.

// sysWritev writes iov to fd with one writev(2) and no allocation: the
// iovec array is the caller's.
func sysWritev(fd int, iov [][]byte, vecs []unix.Iovec) (int, []unix.Iovec, error) {
	vecs = vecs[:0]
	for _, b := range iov {
		if len(b) == 0 {
			continue
		}
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		vecs = append(vecs, v)
	}
	if len(vecs) == 0 {
		return 0, vecs, nil
	}
	for {
		n, _, errno := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&vecs[0])), uintptr(len(vecs)))
		switch errno {
		case 0:
			return int(n), vecs, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, vecs, nil
		}
		return 0, vecs, errno
	}
}

// writeWatcher waits, on one goroutine for the whole server, for sockets
// that refused bytes to become writable again, and wakes their loops. It
// holds one-shot registrations: a socket is armed when a write comes up
// short and disarmed by its first event.
type writeWatcher struct {
	srv  *Server
	epfd int
	efd  int // eventfd: wakes the watcher to stop
	done chan struct{}
	once sync.Once
}

func newWriteWatcher(srv *Server) (*writeWatcher, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1, Pad: -1}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(efd)
		return nil, err
	}
	w := &writeWatcher{srv: srv, epfd: epfd, efd: efd, done: make(chan struct{})}
	go w.run()
	return w, nil
}

// arm asks for one wake-up of connection id when fd becomes writable.
// Called on the connection's loop; registered says whether fd was added
// before (then the registration is re-armed).
func (w *writeWatcher) arm(fd int, id uint64, registered bool) error {
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLONESHOT, Fd: int32(id), Pad: int32(id >> 32)}
	op := unix.EPOLL_CTL_MOD
	if !registered {
		op = unix.EPOLL_CTL_ADD
	}
	err := unix.EpollCtl(w.epfd, op, fd, &ev)
	if errors.Is(err, unix.EEXIST) {
		err = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
	} else if errors.Is(err, unix.ENOENT) {
		err = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
	}
	return err
}

func (w *writeWatcher) run() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == -1 && ev.Pad == -1 {
				return // stop
			}
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if c := w.srv.lookup(id); c != nil {
				c.wakeForWrite()
			}
		}
	}
}

func (w *writeWatcher) stop() {
	w.once.Do(func() {
		var one [8]byte
		one[0] = 1
		_, _ = unix.Write(w.efd, one[:])
		<-w.done
		unix.Close(w.epfd)
		unix.Close(w.efd)
	})
}

// directWriter is the write side of a gnet connection: the bytes the kernel
// refused, in order, and whether the socket is registered with the watcher.
// It is allocated only when a write first comes up short.
type directWriter struct {
	pend       []byte
	off        int
	registered bool
}

func (d *directWriter) pending() int {
	if d == nil {
		return 0
	}
	return len(d.pend) - d.off
}
