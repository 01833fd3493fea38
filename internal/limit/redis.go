package limit

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig says how to reach a Redis (or anything speaking its
// protocol: Valkey, a managed Redis).
type RedisConfig struct {
	Addr     string
	Password string
	DB       int
	// TLS, when set, speaks TLS to the server (rediss), verifying its
	// certificate against the system's roots.
	TLS bool
	// Timeout bounds one Take or Count, connecting included.
	Timeout time.Duration
}

// Redis is a store shared by every gateway that names the same server.
// Each Take is one Lua script, run atomically by the server, on the
// server's clock: the gateways' clocks do not matter.
//
// What a Take costs the gateway is mostly its round trip (a write and a
// read on a socket, and a wait), not the script. So Takes in flight at
// once share one: a sender sends every Take waiting for it as one
// pipeline; a few senders take turns, so a lot goes out while others wait
// for their replies. An idle gateway's Take goes alone, at once; a busy
// one pays one round trip per lot rather than per cancel. Each script
// still runs alone and atomically on the server.
type Redis struct {
	client  *redis.Client
	timeout time.Duration
	// id and seq make each admission's member unique across the fleet.
	id  string
	seq atomic.Uint64
	// epoch is the store's epoch as this gateway last saw it; a store
	// that starts over while a gateway knows an older one lost its data.
	mu    sync.Mutex
	epoch string
	// takes hands Takes to the senders; stop ends them, and stopped is
	// closed once they all have.
	takes     chan *take
	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

// take is one Take waiting for the sender: its script's keys and
// arguments, and once done is closed, the store's reply.
type take struct {
	ctx   context.Context
	keys  []string
	args  []any
	reply []any
	err   error
	done  chan struct{}
}

// maxLot bounds the Takes sent in one pipeline.
const maxLot = 256

// Prefix begins every key the store writes. The braces are a Redis
// Cluster hash tag: every key of a Take lies in one slot, as a script over
// several keys needs.
const Prefix = "{lro_cancel}:"

const epochKey = Prefix + "epoch"

// NewRedis returns a store on the server cfg names. It does not connect
// until it is first used, and reconnects by itself after an outage.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.Timeout <= 0 {
		return nil, errors.New("the redis timeout must be positive")
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("redis address %q: %w", cfg.Addr, err)
	}
	opts := &redis.Options{
		Addr:     cfg.Addr,
		Password: cfg.Password,
		DB:       cfg.DB,
		// Every wait is bounded by the timeout: a slow store answers as a
		// failed one, at once, rather than holding cancels.
		DialTimeout:           cfg.Timeout,
		ReadTimeout:           cfg.Timeout,
		WriteTimeout:          cfg.Timeout,
		PoolTimeout:           cfg.Timeout,
		ContextTimeoutEnabled: true,
		DialerRetries:         1,
		// One retry replaces a pooled connection a server restart broke.
		// The script is idempotent (its member says whether it ran), so a
		// retry after a lost reply cannot count a cancel twice.
		MaxRetries:      1,
		DisableIdentity: true,
	}
	if cfg.TLS {
		opts.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("making the gateway's member prefix: %w", err)
	}
	s := &Redis{
		client: redis.NewClient(opts), timeout: cfg.Timeout, id: hex.EncodeToString(id[:]),
		takes: make(chan *take), stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	var senders sync.WaitGroup
	for range lotsInFlight {
		senders.Go(s.send)
	}
	go func() {
		senders.Wait()
		close(s.stopped)
	}()
	return s, nil
}

// lotsInFlight is how many lots may be on the wire at once: while one waits
// for its replies, the next lot goes out, so that a Take waits for at most
// its own lot's round trip when the store keeps up, and one slow reply
// (or a sender the scheduler runs late) does not hold every cancel.
const lotsInFlight = 2

// send is a sender: it takes the first Take that waits, with every other
// waiting by then, and sends them as one pipeline.
func (s *Redis) send() {
	lot := make([]*take, 0, maxLot)
	for {
		select {
		case t := <-s.takes:
			lot = append(lot[:0], t)
		case <-s.stop:
			return
		}
	more:
		for len(lot) < maxLot {
			select {
			case t := <-s.takes:
				lot = append(lot, t)
			default:
				break more
			}
		}
		s.sendLot(lot)
		clear(lot)
	}
}

// sendLot runs each Take's script in one pipeline and hands each its
// reply. A Take whose caller stopped waiting before it was sent is not
// sent: it admits nothing.
func (s *Redis) sendLot(lot []*take) {
	live := lot[:0] // filtered in place: lot is the sender's own
	for _, t := range lot {
		if err := t.ctx.Err(); err != nil {
			t.err = err
			close(t.done)
			continue
		}
		live = append(live, t)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	cmds := make([]*redis.Cmd, len(live))
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range live {
			cmds[i] = takeScript.EvalSha(ctx, p, t.keys, t.args...)
		}
		return nil
	})
	// A store that does not know the script yet (new, restarted, flushed)
	// is sent its text, as Script.Run does.
	var again []int
	for i, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range again {
				cmds[i] = takeScript.Eval(ctx, p, live[i].keys, live[i].args...)
			}
			return nil
		})
	}
	for i, t := range live {
		t.reply, t.err = cmds[i].Slice()
		close(t.done)
	}
}

// errClosed answers a Take on a closed store.
var errClosed = errors.New("the redis limit store is closed")

// takeScript is Take, run by the server. KEYS[1] is the epoch marker, then
// one key per rule; ARGV: force ("1" or "0"), the admission's unique
// member, the epoch the gateway knows ("" for none), then each rule's
// count and window (microseconds). It returns {refused, retry, epoch}:
// refused is 0 when admitted, the 1-based rule over quota otherwise, -1
// when the store lost its data within a window; retry is in microseconds.
//
// Numbers go to redis.call through string.format: Lua would write them
// with 14 significant digits, and a time in microseconds has 16.
var takeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function num(x) return string.format('%.0f', x) end

local epoch = redis.call('GET', KEYS[1])
if not epoch then
	-- An empty store. A gateway that knew an epoch sees it lost its counts.
	local how = 'clean'
	if ARGV[3] ~= '' then how = 'lost' end
	epoch = t[1] .. '.' .. t[2] .. ':' .. how
	redis.call('SET', KEYS[1], epoch)
end
local s, u, how = string.match(epoch, '^(%d+)%.(%d+):(%a+)$')
local since = tonumber(s) * 1000000 + tonumber(u)

-- A retry of a Take that already ran (its reply was lost) admitted it.
if redis.call('ZSCORE', KEYS[2], ARGV[2]) then
	return {0, 0, epoch}
end

local refused, retry = 0, 0
for j = 2, #KEYS do
	local count = tonumber(ARGV[2 * j])
	local window = tonumber(ARGV[2 * j + 1])
	if how == 'lost' and now < since + window then
		return {-1, since + window - now, epoch}
	end
	redis.call('ZREMRANGEBYSCORE', KEYS[j], '-inf', num(now - window))
	local n = redis.call('ZCARD', KEYS[j])
	if refused == 0 and n >= count then
		-- The count-th most recent admission frees the slot.
		local kth = redis.call('ZRANGE', KEYS[j], n - count, n - count, 'WITHSCORES')
		refused, retry = j - 1, tonumber(kth[2]) + window - now
	end
end
if refused == 0 or ARGV[1] == '1' then
	for j = 2, #KEYS do
		local count = tonumber(ARGV[2 * j])
		local window = tonumber(ARGV[2 * j + 1])
		redis.call('ZADD', KEYS[j], num(now), ARGV[2])
		redis.call('ZREMRANGEBYRANK', KEYS[j], 0, -(count + 1))
		redis.call('PEXPIRE', KEYS[j], num(math.ceil(window / 1000) + 1))
	end
end
return {refused, retry, epoch}
`)

// countScript counts KEYS[1]'s admissions in the last ARGV[1]
// microseconds, on the server's clock.
var countScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%.0f', now - tonumber(ARGV[1])), '+inf')
`)

// Take implements Store.
func (s *Redis) Take(ctx context.Context, entries []Entry, force bool) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	keys := make([]string, 0, 1+len(entries))
	args := make([]any, 0, 3+2*len(entries))
	keys = append(keys, epochKey)
	flag := "0"
	if force {
		flag = "1"
	}
	s.mu.Lock()
	known := s.epoch
	s.mu.Unlock()
	args = append(args, flag, s.id+"-"+strconv.FormatUint(s.seq.Add(1), 36), known)
	for _, e := range entries {
		keys = append(keys, Prefix+e.Key.String())
		args = append(args, e.Count, e.Window.Microseconds())
	}
	reply, err := s.roundTrip(ctx, keys, args)
	if err != nil {
		return Result{Refused: -1}, fmt.Errorf("taking from the redis limit store: %w", err)
	}
	refused, retry, epoch, ok := readReply(reply)
	if !ok {
		return Result{Refused: -1}, fmt.Errorf("the redis limit store answered %v, not {refused, retry, epoch}", reply)
	}
	if epoch != known {
		s.mu.Lock()
		s.epoch = epoch
		s.mu.Unlock()
	}
	retryAfter := time.Duration(retry) * time.Microsecond
	if refused < 0 {
		return Result{Refused: -1}, fmt.Errorf("%w: exact again in %s", ErrStoreLost, retryAfter.Round(time.Millisecond))
	}
	if refused == 0 {
		return Result{Refused: -1}, nil
	}
	return Result{Refused: int(refused - 1), RetryAfter: retryAfter}, nil
}

// roundTrip hands a Take to the sender and waits for its reply, or for
// ctx. A Take given up after it was sent may still have admitted a
// cancel, as when a reply is lost.
func (s *Redis) roundTrip(ctx context.Context, keys []string, args []any) ([]any, error) {
	t := &take{ctx: ctx, keys: keys, args: args, done: make(chan struct{})}
	select {
	case s.takes <- t:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.stopped:
		return nil, errClosed
	}
	select {
	case <-t.done:
		return t.reply, t.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func readReply(reply []any) (refused, retry int64, epoch string, ok bool) {
	if len(reply) != 3 {
		return 0, 0, "", false
	}
	refused, ok1 := reply[0].(int64)
	retry, ok2 := reply[1].(int64)
	epoch, ok3 := reply[2].(string)
	return refused, retry, epoch, ok1 && ok2 && ok3
}

// Count implements Store.
func (s *Redis) Count(ctx context.Context, key Hash, window time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := countScript.Run(ctx, s.client, []string{Prefix + key.String()}, window.Microseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("counting in the redis limit store: %w", err)
	}
	return n, nil
}

// Close implements Store.
func (s *Redis) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.stopped
		err = s.client.Close()
	})
	return err
}

var _ Store = (*Redis)(nil)
