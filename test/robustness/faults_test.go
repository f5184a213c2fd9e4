//go:build robustness

package robustness

import (
	"syscall"
	"time"
)

// faultWindow is how long a fault lasts at least: several election timeouts
// (1 s by default), so that clients work through the whole failover.
const faultWindow = 4 * time.Second

// fault is one failure injected while the clients run; it returns once
// the fault is undone, not necessarily healed.
type fault struct {
	name string
	run  func(s *system)
}

// The faults against embedded etcd.
var (
	killLeader      = fault{"SIGKILL the etcd leader's server", func(s *system) { killAndRestart(s, s.leader()) }}
	killFollower    = fault{"SIGKILL a follower's server", func(s *system) { killAndRestart(s, s.other(s.leader())) }}
	pauseLeader     = fault{"SIGSTOP the etcd leader's server, then SIGCONT", func(s *system) { pause(s, s.leader()) }}
	partitionLeader = fault{"cut the etcd leader's host off, then heal", func(s *system) { partition(s, s.leader()) }}
	partitionOther  = fault{"cut a follower's host off, then heal", func(s *system) { partition(s, s.other(s.leader())) }}
	killEvery       = fault{"SIGKILL every server, then start them", killAll}
	killAgentServer = fault{"SIGKILL the server the agent joined", agentServerDies}

	etcdFaults = []fault{killLeader, killFollower, pauseLeader, partitionLeader, partitionOther, killEvery, killAgentServer}
)

// The faults against servers sharing PostgreSQL.
var (
	killServer      = fault{"SIGKILL a server", func(s *system) { killAndRestart(s, s.next()) }}
	pauseServer     = fault{"SIGSTOP a server, then SIGCONT", func(s *system) { pause(s, s.next()) }}
	partitionServer = fault{"cut a server's host off, then heal", func(s *system) { partition(s, s.next()) }}
	killDB          = fault{"SIGKILL the database, then start it", killDatabase}

	postgresFaults = []fault{killServer, pauseServer, partitionServer, killEvery, killDB}
)

// regression replays the seed and the faults of a run that found a defect,
// after the main run, on the same cluster.
type regression struct {
	defect string
	seed   int64
	faults []fault
}

var etcdRegressions = []regression{
	{"watches through the supervisor failed: its wrapper of the apiserver's writer hid http.Flusher",
		1795867396942351912, []fault{killLeader}},
	{"a create answered 503 \"leader changed\" during a partition, retried by client-go, was applied a second time after a delete once the old leader's host was back",
		1795867670652089229, []fault{partitionLeader, pauseLeader, partitionLeader}},
}

var postgresRegressions = []regression{
	{"a key created again after its deletion was answered with kine's last known revision of the store, not its own row's",
		1795870739463299724, []fault{killServer}},
	{"a create whose commit failed as the database was killed was answered AlreadyExists, though the database had applied it (kine answers any failed commit as \"exists\")",
		1795889493185346134, []fault{killDB}},
}

// next takes turns among the servers of a datastore without a leader.
func (s *system) next() int {
	s.turn++
	return s.turn % len(s.servers)
}

// holdUntil keeps a fault in place until its window ends: the window is
// the fault's length, which the clients must live through.
func holdUntil(end time.Time) { time.Sleep(time.Until(end)) }

func killAndRestart(s *system, i int) {
	end := time.Now().Add(faultWindow)
	s.kill(i)
	s.waitWritable("the other servers serve writes", i)
	holdUntil(end)
	s.restart(i)
}

func pause(s *system, i int) {
	end := time.Now().Add(faultWindow)
	p := s.servers[i].Proc
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatal(err)
	}
	// SIGCONT however this ends: a stopped process outlives SIGKILL's reaping wait.
	defer func() {
		if err := p.Signal(syscall.SIGCONT); err != nil {
			s.t.Error(err)
		}
	}()
	s.waitWritable("the other servers serve writes", i)
	holdUntil(end)
}

func partition(s *system, i int) {
	end := time.Now().Add(faultWindow)
	h := s.servers[i].Host
	h.Partition(s.t)
	defer h.Heal(s.t)
	s.waitWritable("the other servers serve writes", i)
	holdUntil(end)
}

func killAll(s *system) {
	end := time.Now().Add(faultWindow)
	for i := range s.servers {
		s.kill(i)
	}
	holdUntil(end)
	for i := range s.servers {
		s.restart(i)
	}
}

// agentServerDies kills the server the agent was given; its node must keep
// renewing its lease through the others before the server comes back.
func agentServerDies(s *system) {
	killed := time.Now()
	s.kill(0)
	s.waitNodeReady(s.agent.Name, killed)
	s.restart(0)
}

func killDatabase(s *system) {
	end := time.Now().Add(faultWindow)
	if err := s.db.Proc.Kill(); err != nil {
		s.t.Fatal(err)
	}
	holdUntil(end)
	s.db.Start()
}
