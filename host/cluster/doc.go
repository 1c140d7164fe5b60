// Package cluster runs one job across many machines on NATS JetStream: a
// second back-end behind backend.Executor, with the local pool's promises.
//
//	pluginpool server --listen 0.0.0.0:4222 --store ./js      # StartServer: embedded JetStream (or any NATS)
//	pluginpool worker --connect nats://HOST:4222              # StartWorker on each machine
//	pluginpool map --cluster nats://HOST:4222 double < in     # Start: an Executor per plugin
//
// Nothing here is a broker: JetStream keeps the work queue, redelivers what a
// dead or hung worker held, and dedupes what a host publishes twice.
//
// # Names
//
// Everything lives in the NATS account the clients log in to:
//
//	stream PLUGINPOOL_BATCHES   subjects pluginpool.batch.<job>; work-queue
//	                            retention (a batch leaves the stream when a
//	                            worker acks it), file storage, replicas as
//	                            configured
//	consumer job_<job>          one durable pull consumer per job, filtered to
//	                            its subject: explicit acks, AckWait = ack_wait,
//	                            MaxAckPending = the job's window, no MaxDeliver
//	                            (workers count deliveries themselves)
//	KV pluginpool_jobs          <job> -> the job record (JSON): plugin, pins,
//	                            ack_wait, host_timeout, max_attempts, answer
//	                            subject. Re-put by its host every host_timeout/5:
//	                            the host's heartbeat
//	KV pluginpool_workers       <worker> -> the worker record (JSON): host, pid,
//	                            plugins (name, version, sha256, slots), load.
//	                            Re-put every 2s; entries age out after 10s
//	pluginpool.answer.<job>     core NATS subject the host listens on for answers
//
// A job is one call: one Map, Imap, ImapUnordered or Apply. Its id is a NUID;
// batch seq s of job j is published with Msg-Id "j.s", so a publish retried
// after a lost PubAck is stored once (JetStream's duplicate window).
//
// # A job's life
//
// The host subscribes to the answer subject, creates the consumer, then the
// job record (kv.Create: workers find only jobs that can be served), and
// publishes batches, up to 16 awaiting their acknowledgement. It cuts a
// batch when the job has room in its window: at most Window batches cut and
// not yet handed to the caller, which bounds the host's memory for a stream
// of any length, and the stream's depth. Batches are sized like the local
// pool's but for ~50 ms of work (a trip through NATS costs milliseconds):
// from the serving workers' recent per-task time (their records carry it),
// else from 1 item, doubling, then from the per-task time each answer
// carries. A batch is never larger than the server's max_payload; an item
// that cannot fit in one message fails alone (ErrTooLarge, naming
// max_payload) rather than travel another way. A partly filled batch is
// sent when the input stalls and nothing else is in flight.
//
// Workers watch pluginpool_jobs. A worker serves a job when it runs the
// job's plugin and the plugin matches the job's pins (sha256 of the
// executable, version it reports); otherwise it leaves the job alone, and the
// host, which reads the same worker records, names the refused workers and
// why. A serving worker pulls from job_<job> only as many batches as it has
// free slots, runs each on one of its slots (a local *pool.Pool of one
// process, so the local pool's crash and timeout rules apply unchanged),
// sends InProgress every ack_wait/3 while it runs, sends the answer as a
// request to pluginpool.answer.<job>, and acks the batch only after the
// host replied: an answer is never lost between the two. An answer is sent
// in parts (contiguous item ranges) when it would not fit in max_payload,
// and every second while a long batch runs: what came back is never run
// again.
//
// # Delivery and duplicates
//
// Execution is at least once; results are exactly once. The host keeps,
// for every batch, which items have a result; an answer (or part) for items
// already resolved is dropped, so the late answer of a batch's first owner
// (a worker that was SIGSTOPped past ack_wait, then resumed) never doubles
// a result. A batch's delivery count is JetStream's: delivery 1 runs. A
// redelivery means its first owner died or hung. For an idempotent plugin it
// runs again, up to max_attempts deliveries, then fails with a *LostError.
// For a plugin that is not idempotent it does not run at all: its items
// fail with a *LostError saying they may have run ("never run twice"). A
// worker that cannot serve a batch it took (its slot degraded, or it is
// being terminated) naks it, idempotent plugins only: for the others a nak
// would look like a lost owner.
//
// # Liveness and purging
//
// Workers time a job's heartbeat on their own clock: a job record not re-put
// within its host_timeout means the host died or hung. The first worker (or
// `pluginpool server`, which runs the same janitor) to notice deletes the
// record with a revision check (so a live host's fresh heartbeat is never
// deleted), then the consumer, then purges pluginpool.batch.<job>; every
// worker cancels what it runs for that job and stops pulling from it.
// Janitors also delete, every few minutes, consumers left without a record
// (a reap cut short) and the purge markers of jobs long finished.
// A host that comes back after that finds its record gone (its heartbeat is
// a kv.Update with the last revision) and fails the unfinished items with a
// *LostError. A host that ends a job (done, cancelled, Terminate) does the
// same purge itself; workers see the record's deletion and cancel at once.
//
// # Workers
//
// StartWorker starts every configured plugin as Workers slots of one
// process each. SIGTERM (Drain) stops pulling, finishes and answers what the
// worker holds, then leaves the registry. SIGHUP (Reload) replaces changed
// plugins slot by slot: a new slot is started, takes the old one's place for
// new batches, and the old one is closed once its batches are answered, so
// capacity never drops by more than one slot and no batch is lost.
package cluster
