package wiretest

import "go.uber.org/goleak"

// LeakOptions are the goleak options every package that starts servers
// uses: they ignore the process-wide goroutines of the libraries, started
// once and never stopped: gnet's ants worker pool (purgeStaleWorkers,
// ticktock) and netpoll's poller (defaultPoll.Wait).
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
		goleak.IgnoreAnyFunction("github.com/cloudwego/netpoll.(*defaultPoll).Wait"),
	}
}
