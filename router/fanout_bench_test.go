package router

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-proto/ferry/codec"
	"github.com/ferry-proto/ferry/internal/wiretest"
	"github.com/ferry-proto/ferry/protocol"
	"github.com/ferry-proto/ferry/reactor"
)

// BenchmarkFanout: one publisher, N subscribers of one topic, 64-byte
// payloads. The subscribers are connections of a child process (the file
// limit of one process is 20,000); this process holds the server and the
// publisher, so B/op and allocs/op are the server's cost per published
// message, and must not grow with N: the frame is encoded once and the
// same bytes are queued on every subscriber.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			r := New(Options{})
			srv, err := reactor.New(reactor.Config{Addr: "127.0.0.1:0", Handler: r, MaxConns: n + 10,
				HandshakeTimeout: time.Minute, MaxOutboundBytes: 64 << 20, HighWatermark: 64 << 20})
			if err != nil {
				b.Fatal(err)
			}
			if err := srv.Start(); err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			child := wiretest.StartChild(b, "TestFanoutSubscriberProcess", "FERRY_FANOUT_CHILD="+srv.Addr()+","+strconv.Itoa(n))
			defer child.Stop()
			child.WaitLine(b, "READY")
			wiretest.WaitUntil(b, "subscriptions", 2*time.Minute, func() bool { return r.subs.Len() == n })

			pub := wiretest.Dial(b, srv.Addr())
			pub.Hello(codec.Hello{ClientID: []byte("publisher")})
			payload := make([]byte, 64)
			frame := codec.Frame{Type: protocol.FramePublish, Lane: protocol.LaneNormal, Name: []byte("bench/fanout"), Payload: payload}
			batch := make([]byte, 0, 64*frame.Len())
			publish := func(count int) {
				for i := 0; i < count; {
					batch = batch[:0]
					for j := 0; j < 64 && i < count; j++ {
						binary.BigEndian.PutUint64(payload, uint64(i))
						batch = frame.Append(batch)
						i++
					}
					pub.Write(batch)
				}
			}
			// Rounds of 64 publications, each closed by a SYNC that every
			// subscriber must have read before the next round: the
			// subscribers keep up, so this measures the server's steady
			// state rather than a backlog growing in its queues.
			sync := codec.Frame{Type: protocol.FramePublish, Lane: protocol.LaneNormal, Name: []byte("bench/fanout"), Payload: []byte("SYNC")}
			rounds := func(total int) {
				for done := 0; done < total; done += 64 {
					publish(min(64, total-done))
					pub.Send(sync)
					child.WaitLine(b, "SYNCED")
				}
			}
			rounds(1024) // warm up: queues and buffers are made once, not per message
			b.ReportAllocs()
			b.ResetTimer()
			rounds(b.N)
			end := codec.Frame{Type: protocol.FramePublish, Lane: protocol.LaneNormal, Name: []byte("bench/fanout"), Payload: []byte("END")}
			pub.Send(end)
			child.WaitLine(b, "DONE")
			b.StopTimer()
			b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "deliveries/s")
			if got := r.Stats().Undelivered.Load(); got != 0 {
				b.Fatalf("%d publications undelivered", got)
			}
		})
	}
}

// TestFanoutSubscriberProcess is the child of BenchmarkFanout: it connects
// n subscribers, prints READY, and prints DONE once every subscriber has
// received the END publication. It does nothing unless FERRY_FANOUT_CHILD
// is set.
func TestFanoutSubscriberProcess(t *testing.T) {
	addr, n, ok := wiretest.ChildSpec("FERRY_FANOUT_CHILD")
	if !ok {
		t.Skip("child process of BenchmarkFanout")
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	sub := codec.Frame{Type: protocol.FrameSubscribe, Lane: 1, Corr: 1, Name: []byte("bench/fanout")}
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("subscriber %d: %v", i, err)
		}
		h := codec.Hello{Version: protocol.Version}
		msg := sub.Append(codec.AppendHello(nil, &h))
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("subscriber %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// Each subscriber reads WELCOME and its RESULT, then publications
	// until END.
	var subscribed, ended sync.WaitGroup
	subscribed.Add(n)
	ended.Add(n)
	// syncs[k] counts the subscribers that have read the k-th SYNC; the
	// last one to read it reports it.
	var syncs [1 << 16]atomic.Int32
	for _, c := range conns {
		go func() {
			defer ended.Done()
			r := bufio.NewReaderSize(c, 16<<10)
			var hdr [4]byte
			body := make([]byte, 64<<10)
			seenResult := false
			k := 0
			for {
				if _, err := io.ReadFull(r, hdr[:]); err != nil {
					return
				}
				l := int(binary.BigEndian.Uint32(hdr[:]))
				if _, err := io.ReadFull(r, body[:l]); err != nil {
					return
				}
				switch protocol.FrameType(body[0]) {
				case protocol.FrameResult:
					if !seenResult {
						seenResult = true
						subscribed.Done()
					}
				case protocol.FramePublish:
					if l >= 4 && string(body[l-4:l]) == "SYNC" {
						if syncs[k%len(syncs)].Add(1) == int32(n) {
							syncs[k%len(syncs)].Store(0)
							fmt.Println("SYNCED", k)
						}
						k++
					}
					if l >= 3 && string(body[l-3:l]) == "END" {
						return
					}
				}
			}
		}()
	}
	subscribed.Wait()
	fmt.Println("READY")
	ended.Wait()
	fmt.Println("DONE")
	wiretest.AwaitParent()
}
