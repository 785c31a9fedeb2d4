package bed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// supervisor starts and stops the bed's processes. Each runs in its own process group (a Ctrl-C
// reaches the suite, which then stops them in order) with SIGKILL as its parent-death signal.
// The kernel sends that signal when the *thread* that started the child exits, so every child is
// started from one goroutine locked to an OS thread that lives as long as the process.
type supervisor struct {
	logDir string
	reqs   chan startReq

	mu    sync.Mutex
	procs []*proc
}

type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

type startReq struct {
	cmd  *exec.Cmd
	done chan error
}

func newSupervisor(logDir string) *supervisor {
	s := &supervisor{logDir: logDir, reqs: make(chan startReq)}
	go func() {
		runtime.LockOSThread() // never unlocked: this thread lives until the process exits
		for r := range s.reqs {
			r.done <- r.cmd.Start()
		}
	}()
	return s
}

// start runs argv with env added to this process's environment; output goes to logs/<name>.log.
func (s *supervisor) start(name string, env []string, argv ...string) (*proc, error) {
	log, err := os.Create(filepath.Join(s.logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	done := make(chan error)
	s.reqs <- startReq{cmd, done}
	if err := <-done; err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.exited)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

// alive reports an error naming the process and the end of its log if it has exited.
func (s *supervisor) alive(p *proc) error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited (%v): %s", p.name, p.err, s.tail(p.name, 15))
	default:
		return nil
	}
}

func (s *supervisor) tail(name string, n int) string {
	b, _ := os.ReadFile(filepath.Join(s.logDir, name+".log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n  " + strings.Join(lines, "\n  ")
}

// stopAll sends SIGTERM to each process group, newest first, waits up to 10 s for each, then
// SIGKILL. The loopkubelet removes its network namespaces on SIGTERM.
func (s *supervisor) stopAll(logf func(string, ...any)) {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		select {
		case <-p.exited:
			continue
		default:
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
		logf("bed: stopped %s", p.name)
	}
}
