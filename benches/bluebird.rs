//! Bluebird's two throughput benchmarks, ported call by call: `doxbee-sequential` (one "file
//! upload" per request: 7 fake I/O calls, one synchronous query) and `madeup-parallel` (25 fake
//! queries started at once and joined, then a commit nobody waits for). The workloads are
//! described in BENCHMARKS.md (section 5), with every place where the port
//! differs from Bluebird's JavaScript.
//!
//! Variants, side by side in one process:
//!
//! - `callbacks`: no library. Each fake I/O call takes a boxed `FnOnce` continuation (Bluebird's
//!   `callbacks-baseline.js`, with its own control flow: doxbee fully sequential, the commit
//!   waited for; parallel joined by a counter);
//! - `Deferred add_callback`, `Deferred chain!`, `LocalDeferred add_callback`: Bluebird's
//!   `promises-bluebird.js` (doxbee: the blob put and the file lookup joined, the commit not
//!   waited for; parallel: `gather_results` of the 25 queries);
//! - `Deferred add_errback last`, `LocalDeferred add_errback last` (doxbee only): the same
//!   `add_callback` chain with the errback added after the last step, which it sees fail too
//!   (`.then(ok).catch(err)`): the program `chain!`'s `then ... catch` is, so the chain a
//!   `chain!` replaces, where upstream's `.then(ok, err)` (`add_callbacks`) is not;
//! - `async/await (tokio)`: `promises-native-async-await.js` on tokio's current-thread runtime,
//!   one spawned task per request, fake I/O over tokio oneshot channels (doxbee: every call
//!   awaited in turn, as upstream; parallel: `try_join_all`), and for doxbee a second row with
//!   the blob put and the lookup joined by `tokio::try_join!` (the shape of the library chains).
//!
//! Fake I/O is the same for every variant: each call pushes its completion (the continuation,
//! the `Resolver`, the oneshot `Sender`) on a FIFO queue at call time, and the benchmark's loop
//! pops them in order and fires each with "no error, no value" (Bluebird's `dummy`), until the
//! queue is empty. No timers, no threads.
//!
//! `cargo bench -p deferred-benches --bench bluebird` prints, for 10,000 concurrent requests,
//! each variant's best time of several warm runs, its peak heap (a counting allocator: peak live
//! bytes above the start of the run), its allocations per request, and the cost per fake I/O
//! call. `... -- --instructions` counts instructions per request under callgrind instead;
//! `... -- --sizes` prints the allocations of one request by size; `... -- run WORKLOAD VARIANT
//! N` runs N requests once (what callgrind, dhat and massif are pointed at); `... -- alone
//! WORKLOAD VARIANT N` prints one variant's best time (ms) of 20 runs of N requests, run alone
//! in its process.
//! `benches/profile_sites.py` summarizes those profiles (instructions by group, heap by site).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

#[path = "heap.rs"]
mod heap;

use heap::{Heap, SIZE_CLASSES, heap_of};

// ---------------------------------------------------------------------------------------------
// The harness (performance.js): every request calls `done` once; errors are counted.

thread_local! {
    static COMPLETED: Cell<u64> = const { Cell::new(0) };
    static ERRORS: Cell<u64> = const { Cell::new(0) };
    /// The fake I/O completions fired in the run.
    static FIRED: Cell<u64> = const { Cell::new(0) };
    /// The fake I/O calls waiting in the queue when the run's first completion fired.
    static QUEUED_AT_FIRST: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Counts `fired` completions, fired from a queue that held `queued` calls before the first.
fn note_fired(queued: u64, fired: u64) {
    if fired > 0 && QUEUED_AT_FIRST.with(Cell::get).is_none() {
        QUEUED_AT_FIRST.with(|q| q.set(Some(queued)));
    }
    FIRED.with(|f| f.set(f.get() + fired));
}

/// The harness's callback, `cb(err)`.
fn done(error: Option<&dyn fmt::Display>) {
    COMPLETED.with(|c| c.set(c.get() + 1));
    if let Some(error) = error {
        black_box(error);
        ERRORS.with(|e| e.set(e.get() + 1));
    }
}

/// Every run is `fn(k, 'b', 'c', cb)`.
const ID_OR_PATH: &str = "b";
/// `--p`, the queries of a madeup-parallel request.
const PARALLEL_QUERIES: usize = 25;
/// `min(350, n)` warm-up requests, run to completion before anything is measured.
const WARMUP: u64 = 350;

/// What every fake I/O call answers: JavaScript's `undefined` (`cb()` with no arguments). A
/// row id where a row would be; `None` always.
type Reply = Option<u64>;

/// A fake I/O call's error: never made (no fake fails), but every variant handles it.
#[derive(Debug)]
struct IoError;

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the fake I/O failed")
    }
}

impl std::error::Error for IoError {}

// ---------------------------------------------------------------------------------------------
// The synchronous parts of the fakes (fakemaker.js), shared by every variant: the objects a
// call returns at once. The fake I/O methods on them are written once per style below.

/// `userAccount` and `account`: empty objects, so `userAccount.id` is undefined.
struct Account {
    id: Option<u64>,
}

const USER_ACCOUNT: Account = Account { id: None };

/// `blobManager.create(account)`: `{ put }`.
struct Blob;

fn blob_manager_create(account: &Account) -> Blob {
    black_box(account);
    Blob
}

/// `db.begin()`: `{ commit, rollback }`.
#[derive(Clone, Copy)]
struct Tx;

fn db_begin() -> Tx {
    Tx
}

/// The "queryish" object of `byUuidOrPath`, `Version.insert`, `FileVersion.insert`,
/// `File.whereUpdate` and `createQuery`: `{ execWithin, exec, get, all }`.
struct Query;

fn by_uuid_or_path(id_or_path: &str) -> Query {
    black_box(id_or_path);
    Query
}

/// `version = { userAccountId, date: new Date(), blobId, creatorId, previousId }`, then
/// `version.id = Version.createHash(version)`.
struct Version {
    user_account_id: Option<u64>,
    date: SystemTime,
    blob_id: Reply,
    creator_id: Option<u64>,
    previous_id: Option<u64>,
    id: u64,
}

impl Version {
    fn new(blob_id: Reply, file: Reply) -> Version {
        let mut version = Version {
            user_account_id: USER_ACCOUNT.id,
            date: SystemTime::now(),
            blob_id,
            creator_id: USER_ACCOUNT.id,
            previous_id: file, // `file ? file.version : null`
            id: 0,
        };
        version.id = version_create_hash(&version);
        version
    }
}

/// `Version.createHash(v)`: 1.
fn version_create_hash(version: &Version) -> u64 {
    black_box((
        version.user_account_id,
        version.date,
        version.blob_id,
        version.creator_id,
        version.previous_id,
    ));
    1
}

fn version_insert(version: &Version) -> Query {
    black_box(version);
    Query
}

/// The new file's row, for `createQuery`.
struct NewFile<'a> {
    id: Option<u64>,
    user_account_id: Option<u64>,
    name: &'a str,
    version: u64,
}

/// The new file's name and id: `idOrPath.split('/')`, its last part, `uuid.v1()` (undefined).
fn new_file(id_or_path: &str, version: u64) -> (Option<u64>, NewFile<'_>) {
    let split_path: Vec<&str> = id_or_path.split('/').collect();
    let file_name = split_path[split_path.len() - 1];
    let new_id = uuid_v1();
    let file = NewFile {
        id: new_id,
        user_account_id: USER_ACCOUNT.id,
        name: file_name,
        version,
    };
    (new_id, file)
}

fn uuid_v1() -> Option<u64> {
    black_box(None)
}

fn file_version_insert(file_id: Reply, version_id: u64) -> Query {
    black_box((file_id, version_id));
    Query
}

fn file_version_insert_index(index: usize) -> Query {
    black_box(index);
    Query
}

fn file_where_update(file_id: Reply, version: u64) -> Query {
    black_box((file_id, version));
    Query
}

// ---------------------------------------------------------------------------------------------
// The fake I/O queue: each call pushes its completion; the loop pops and fires them in order.

struct Fifo<C>(RefCell<VecDeque<C>>);

impl<C> Fifo<C> {
    const fn new() -> Fifo<C> {
        Fifo(RefCell::new(VecDeque::new()))
    }

    fn push(&self, completion: C) {
        self.0.borrow_mut().push_back(completion);
    }

    fn pop(&self) -> Option<C> {
        self.0.borrow_mut().pop_front()
    }

    fn len(&self) -> u64 {
        self.0.borrow().len() as u64
    }

    /// Frees the queue's buffer, so that each measured run grows (and counts) its own.
    fn reset(&self) {
        *self.0.borrow_mut() = VecDeque::new();
    }
}

// ---------------------------------------------------------------------------------------------
// No library: boxed continuations (callbacks-baseline.js, lib/fakes.js).

mod callbacks {
    use super::*;

    type Continuation = Box<dyn FnOnce(Result<Reply, IoError>)>;

    thread_local! {
        static QUEUE: Fifo<Continuation> = const { Fifo::new() };
    }

    /// `dummy(n)`: the continuation is queued now and called with no error and no value.
    fn dummy(cb: impl FnOnce(Result<Reply, IoError>) + 'static) {
        QUEUE.with(|queue| queue.push(Box::new(cb)));
    }

    // The fake I/O methods of this style, as traits (each style has its own).
    trait BlobIo {
        fn put(&self, stream: u64, cb: impl FnOnce(Result<Reply, IoError>) + 'static);
    }

    impl BlobIo for Blob {
        fn put(&self, stream: u64, cb: impl FnOnce(Result<Reply, IoError>) + 'static) {
            black_box(stream);
            dummy(cb);
        }
    }

    trait QueryIo {
        fn get(&self, cb: impl FnOnce(Result<Reply, IoError>) + 'static);
        fn exec_within(&self, tx: Tx, cb: impl FnOnce(Result<Reply, IoError>) + 'static);
    }

    impl QueryIo for Query {
        fn get(&self, cb: impl FnOnce(Result<Reply, IoError>) + 'static) {
            dummy(cb);
        }
        fn exec_within(&self, tx: Tx, cb: impl FnOnce(Result<Reply, IoError>) + 'static) {
            black_box(tx);
            dummy(cb);
        }
    }

    trait TxIo {
        fn commit(&self, cb: impl FnOnce(Result<Reply, IoError>) + 'static);
        fn rollback(&self, cb: impl FnOnce(Result<Reply, IoError>) + 'static);
    }

    impl TxIo for Tx {
        fn commit(&self, cb: impl FnOnce(Result<Reply, IoError>) + 'static) {
            dummy(cb);
        }
        fn rollback(&self, cb: impl FnOnce(Result<Reply, IoError>) + 'static) {
            dummy(cb);
        }
    }

    /// `self.createQuery(x, y, cb)`: synchronous, `cb(null, q)` at once.
    fn create_query(id_or_path: &str, file: &NewFile<'_>, cb: impl FnOnce(Result<Query, IoError>)) {
        black_box((
            id_or_path,
            file.id,
            file.user_account_id,
            file.name,
            file.version,
        ));
        cb(Ok(Query));
    }

    /// A continuation for a call whose answer nobody wants (`tx.rollback()`, `tx.commit()`).
    fn ignore(_: Result<Reply, IoError>) {}

    pub fn drive() {
        let queued = QUEUE.with(Fifo::len);
        let mut fired = 0;
        while let Some(cb) = QUEUE.with(Fifo::pop) {
            cb(Ok(None));
            fired += 1;
        }
        note_fired(queued, fired);
    }

    pub fn reset() {
        QUEUE.with(Fifo::reset);
    }

    /// doxbee-sequential/callbacks-baseline.js: A, B, C, (D), E, F, G, H in sequence; `done`
    /// after the commit.
    pub fn doxbee(stream: u64) {
        let id_or_path = ID_OR_PATH;
        let blob = blob_manager_create(&USER_ACCOUNT);
        let tx = db_begin();
        let backoff = move |err: IoError| {
            tx.rollback(ignore);
            done(Some(&err));
        };
        blob.put(stream, move |result| {
            let blob_id = match result {
                Ok(blob_id) => blob_id,
                Err(err) => return done(Some(&err)),
            };
            by_uuid_or_path(id_or_path).get(move |result| {
                let file = match result {
                    Ok(file) => file,
                    Err(err) => return done(Some(&err)),
                };
                let version = Version::new(blob_id, file);
                let version_id = version.id;
                version_insert(&version).exec_within(tx, move |result| {
                    if let Err(err) = result {
                        return backoff(err);
                    }
                    if file.is_none() {
                        let (new_id, new_file) = new_file(id_or_path, version_id);
                        create_query(id_or_path, &new_file, move |result| {
                            let q = match result {
                                Ok(q) => q,
                                Err(err) => return backoff(err),
                            };
                            q.exec_within(tx, move |result| {
                                after_file_exists(result.map(|_| new_id), version_id, tx)
                            });
                        });
                    } else {
                        after_file_exists(Ok(file), version_id, tx)
                    }
                });
            });
        });
    }

    /// `afterFileExists(err, fileId)`.
    fn after_file_exists(file_id: Result<Reply, IoError>, version_id: u64, tx: Tx) {
        let backoff = move |err: IoError| {
            tx.rollback(ignore);
            done(Some(&err));
        };
        let file_id = match file_id {
            Ok(file_id) => file_id,
            Err(err) => return backoff(err),
        };
        file_version_insert(file_id, version_id).exec_within(tx, move |result| {
            if let Err(err) = result {
                return backoff(err);
            }
            file_where_update(file_id, version_id).exec_within(tx, move |result| {
                if let Err(err) = result {
                    return backoff(err);
                }
                tx.commit(|result| match result {
                    Ok(_) => done(None),
                    Err(err) => done(Some(&err)),
                });
            });
        });
    }

    /// madeup-parallel/callbacks-baseline.js: 25 queries, each with its own continuation; a
    /// shared counter; commit (not waited for) and `done` after the last.
    pub fn parallel(_stream: u64) {
        let tx = db_begin();
        let current = std::rc::Rc::new(Cell::new(0));
        let total = PARALLEL_QUERIES;
        for i in 0..total {
            let current = current.clone();
            file_version_insert_index(i).exec_within(tx, move |result| match result {
                Err(err) => {
                    tx.rollback(ignore);
                    done(Some(&err));
                }
                Ok(_) => {
                    current.set(current.get() + 1);
                    if current.get() == total {
                        tx.commit(ignore);
                        done(None);
                    }
                }
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The library: the same code for both kinds (`Deferred` and `LocalDeferred`), fakes lifted the
// way a promisify would (lib/fakesP.js): each call makes a pending Deferred, queues its Resolver.

macro_rules! library_variants {
    ($kind:ident, $Deferred:ident, $Resolver:ident, $gather:path) => {
        mod $kind {
            use super::*;
            use deferred::{Failure, $Deferred, $Resolver};
            use $gather as gather_results;

            thread_local! {
                static QUEUE: Fifo<$Resolver<Reply>> = const { Fifo::new() };
            }

            /// `lifter(dummy(n))`: a pending Deferred; its Resolver is queued.
            fn dummy() -> $Deferred<Reply> {
                let (d, resolver) = $Deferred::pending();
                QUEUE.with(|queue| queue.push(resolver));
                d
            }

            // The lifted fakes, as traits (each style has its own).
            pub trait BlobIo {
                fn put(&self, stream: u64) -> $Deferred<Reply>;
            }

            impl BlobIo for Blob {
                fn put(&self, stream: u64) -> $Deferred<Reply> {
                    black_box(stream);
                    dummy()
                }
            }

            pub trait QueryIo {
                fn get(&self) -> $Deferred<Reply>;
                fn exec_within(&self, tx: Tx) -> $Deferred<Reply>;
            }

            impl QueryIo for Query {
                fn get(&self) -> $Deferred<Reply> {
                    dummy()
                }
                fn exec_within(&self, tx: Tx) -> $Deferred<Reply> {
                    black_box(tx);
                    dummy()
                }
            }

            pub trait TxIo {
                fn commit(&self) -> $Deferred<Reply>;
                fn rollback(&self) -> $Deferred<Reply>;
            }

            impl TxIo for Tx {
                fn commit(&self) -> $Deferred<Reply> {
                    dummy()
                }
                fn rollback(&self) -> $Deferred<Reply> {
                    dummy()
                }
            }

            /// The lifted `createQuery`: already fired when returned.
            pub fn create_query(id_or_path: &str, file: &NewFile<'_>) -> $Deferred<Query> {
                black_box((
                    id_or_path,
                    file.id,
                    file.user_account_id,
                    file.name,
                    file.version,
                ));
                $Deferred::succeed(Query)
            }

            pub fn drive() {
                let queued = QUEUE.with(Fifo::len);
                let mut fired = 0;
                while let Some(resolver) = QUEUE.with(Fifo::pop) {
                    resolver.callback(None);
                    fired += 1;
                }
                note_fired(queued, fired);
            }

            pub fn reset() {
                QUEUE.with(Fifo::reset);
            }

            /// doxbee-sequential/promises-bluebird.js with `add_callback`: A and B joined, C,
            /// D then E then `newId`, F, G, then commit (not waited for) and `done`; the final
            /// `.then(ok, err)` is `add_callbacks`. Bluebird's flat `.then`s share `version`,
            /// `file` and `fileId` through the outer function's variables; here each step is
            /// added inside the one whose names it uses (what `chain!` expands to).
            pub fn doxbee_add_callback(stream: u64) {
                let id_or_path = ID_OR_PATH;
                let blob = blob_manager_create(&USER_ACCOUNT);
                let tx = db_begin();
                let blob_id_p = blob.put(stream);
                let file_p = by_uuid_or_path(id_or_path).get();
                let request = gather_results([blob_id_p, file_p])
                    .add_callback(move |found: Vec<Reply>| {
                        let file = found[1];
                        let version = Version::new(found[0], file);
                        let version_id = version.id;
                        version_insert(&version)
                            .exec_within(tx)
                            .add_callback(move |_| {
                                let file_id = if file.is_none() {
                                    let (new_id, new_file) = new_file(id_or_path, version_id);
                                    create_query(id_or_path, &new_file)
                                        .add_callback(move |q: Query| q.exec_within(tx))
                                        .add_callback(move |_| Ok(new_id))
                                } else {
                                    $Deferred::succeed(file)
                                };
                                file_id.add_callback(move |file_id: Reply| {
                                    file_version_insert(file_id, version_id)
                                        .exec_within(tx)
                                        .add_callback(move |_| {
                                            file_where_update(file_id, version_id).exec_within(tx)
                                        })
                                })
                            })
                    })
                    .add_callbacks(
                        move |_| {
                            drop(tx.commit());
                            done(None);
                            Ok(())
                        },
                        move |err: Failure| {
                            drop(tx.rollback());
                            done(Some(&err));
                            Ok(())
                        },
                    );
                drop(request);
            }

            /// [`doxbee_add_callback`] with the errback added after the last step, which it sees
            /// fail too (Bluebird's `.then(ok).catch(err)`, not `.then(ok, err)`): the same program
            /// as `chain!`'s `then ... catch`, which is the `add_callback` chain a `chain!`
            /// replaces. The commit step is added to the last query's Deferred, inside the run,
            /// where `chain!` adds it. As in `doxbee_add_callback`, `Version::new` and the insert
            /// are one callback (two steps in `chain!`), and fewer names are carried: both in
            /// this chain's favour.
            pub fn doxbee_add_errback_last(stream: u64) {
                let id_or_path = ID_OR_PATH;
                let blob = blob_manager_create(&USER_ACCOUNT);
                let tx = db_begin();
                let blob_id_p = blob.put(stream);
                let file_p = by_uuid_or_path(id_or_path).get();
                let request = gather_results([blob_id_p, file_p])
                    .add_callback(move |found: Vec<Reply>| {
                        let file = found[1];
                        let version = Version::new(found[0], file);
                        let version_id = version.id;
                        version_insert(&version)
                            .exec_within(tx)
                            .add_callback(move |_| {
                                let file_id = if file.is_none() {
                                    let (new_id, new_file) = new_file(id_or_path, version_id);
                                    create_query(id_or_path, &new_file)
                                        .add_callback(move |q: Query| q.exec_within(tx))
                                        .add_callback(move |_| Ok(new_id))
                                } else {
                                    $Deferred::succeed(file)
                                };
                                file_id.add_callback(move |file_id: Reply| {
                                    file_version_insert(file_id, version_id)
                                        .exec_within(tx)
                                        .add_callback(move |_| {
                                            file_where_update(file_id, version_id)
                                                .exec_within(tx)
                                                .add_callback(move |_| {
                                                    drop(tx.commit());
                                                    done(None);
                                                    Ok(())
                                                })
                                        })
                                })
                            })
                    })
                    .add_errback(move |err: Failure| {
                        drop(tx.rollback());
                        done(Some(&err));
                        Ok(())
                    });
                drop(request);
            }

            /// madeup-parallel/promises-bluebird.js: 25 queries, `Promise.all(...).then(ok,
            /// err)`.
            pub fn parallel_add_callback(_stream: u64) {
                let tx = db_begin();
                let queries: Vec<$Deferred<Reply>> = (0..PARALLEL_QUERIES)
                    .map(|i| file_version_insert_index(i).exec_within(tx))
                    .collect();
                let request = gather_results(queries).add_callbacks(
                    move |_| {
                        drop(tx.commit());
                        done(None);
                        Ok(())
                    },
                    move |err: Failure| {
                        drop(tx.rollback());
                        done(Some(&err));
                        Ok(())
                    },
                );
                drop(request);
            }
        }
    };
}

library_variants!(send, Deferred, Resolver, deferred::gather_results);
library_variants!(
    local,
    LocalDeferred,
    LocalResolver,
    deferred::local::gather_results
);

// The `chain!` variants, for both kinds: the same calls as `send::*_add_callback` (the start's
// kind decides the chain's).
macro_rules! chain_variants {
    ($kind:ident, $io:ident, $Deferred:ident, $gather:path) => {
        mod $kind {
            use super::$io::{BlobIo, QueryIo, TxIo, create_query};
            use super::*;
            use deferred::{chain, $Deferred as Deferred};
            use $gather as gather_results;

            /// doxbee-sequential/promises-bluebird.js with `chain!`.
            pub fn doxbee(stream: u64) {
                let id_or_path = ID_OR_PATH;
                let blob = blob_manager_create(&USER_ACCOUNT);
                let tx = db_begin();
                let blob_id_p = blob.put(stream);
                let file_p = by_uuid_or_path(id_or_path).get();
                let request = chain! {
                    gather_results([blob_id_p, file_p])
                    then |found| Version::new(found[0], found[1])
                    then |version| version_insert(&version).exec_within(tx)
                    then |_| if found[1].is_none() {
                        let (new_id, new_file) = new_file(id_or_path, version.id);
                        chain! {
                            create_query(id_or_path, &new_file)
                            then |q| q.exec_within(tx)
                            then |_| new_id
                        }
                    } else {
                        Deferred::succeed(found[1])
                    }
                    then |file_id| file_version_insert(file_id, version.id).exec_within(tx)
                    then |_| file_where_update(file_id, version.id).exec_within(tx)
                    then |_| {
                        drop(tx.commit());
                        done(None)
                    }
                    catch |err| {
                        drop(tx.rollback());
                        done(Some(&err))
                    }
                };
                drop(request);
            }

            /// madeup-parallel/promises-bluebird.js with `chain!`.
            pub fn parallel(_stream: u64) {
                let tx = db_begin();
                let queries: Vec<Deferred<Reply>> = (0..PARALLEL_QUERIES)
                    .map(|i| file_version_insert_index(i).exec_within(tx))
                    .collect();
                let request = chain! {
                    gather_results(queries)
                    then |_| {
                        drop(tx.commit());
                        done(None)
                    }
                    catch |err| {
                        drop(tx.rollback());
                        done(Some(&err))
                    }
                };
                drop(request);
            }
        }
    };
}

chain_variants!(send_chain, send, Deferred, deferred::gather_results);
chain_variants!(
    local_chain,
    local,
    LocalDeferred,
    deferred::local::gather_results
);

// ---------------------------------------------------------------------------------------------
// async/await (promises-native-async-await.js) on tokio's current-thread runtime: one task per
// request; each fake I/O call makes a oneshot channel and queues its Sender at call time.

mod tokio_io {
    use super::*;
    use tokio::sync::oneshot;

    thread_local! {
        static QUEUE: Fifo<oneshot::Sender<Reply>> = const { Fifo::new() };
    }

    /// The lifted `dummy(n)`: the Sender is queued now; the future waits for it.
    fn dummy() -> impl Future<Output = Result<Reply, IoError>> {
        let (tx, rx) = oneshot::channel();
        QUEUE.with(|queue| queue.push(tx));
        async move { rx.await.map_err(|_| IoError) }
    }

    trait BlobIo {
        fn put(self, stream: u64) -> impl Future<Output = Result<Reply, IoError>>;
    }

    impl BlobIo for Blob {
        fn put(self, stream: u64) -> impl Future<Output = Result<Reply, IoError>> {
            black_box(stream);
            dummy()
        }
    }

    trait QueryIo {
        fn get(self) -> impl Future<Output = Result<Reply, IoError>>;
        fn exec_within(self, tx: Tx) -> impl Future<Output = Result<Reply, IoError>>;
    }

    impl QueryIo for Query {
        fn get(self) -> impl Future<Output = Result<Reply, IoError>> {
            dummy()
        }
        fn exec_within(self, tx: Tx) -> impl Future<Output = Result<Reply, IoError>> {
            black_box(tx);
            dummy()
        }
    }

    trait TxIo {
        fn commit(self) -> impl Future<Output = Result<Reply, IoError>>;
        fn rollback(self) -> impl Future<Output = Result<Reply, IoError>>;
    }

    impl TxIo for Tx {
        fn commit(self) -> impl Future<Output = Result<Reply, IoError>> {
            dummy()
        }
        fn rollback(self) -> impl Future<Output = Result<Reply, IoError>> {
            dummy()
        }
    }

    /// The lifted `createQuery`: ready at once (`await` on it does not suspend).
    fn create_query(
        id_or_path: &str,
        file: &NewFile<'_>,
    ) -> impl Future<Output = Result<Query, IoError>> + use<> {
        black_box((
            id_or_path,
            file.id,
            file.user_account_id,
            file.name,
            file.version,
        ));
        std::future::ready(Ok(Query))
    }

    /// doxbee-sequential/promises-native-async-await.js: A, B, C, (D), E, F, G awaited one
    /// after the other (`joined`: A and B joined with `try_join!` instead); commit not waited
    /// for.
    pub async fn doxbee(stream: u64, joined: bool) {
        let id_or_path = ID_OR_PATH;
        let blob = blob_manager_create(&USER_ACCOUNT);
        let tx = db_begin();
        let upload = async {
            let (blob_id, file) = if joined {
                tokio::try_join!(blob.put(stream), by_uuid_or_path(id_or_path).get())?
            } else {
                let blob_id = blob.put(stream).await?;
                let file = by_uuid_or_path(id_or_path).get().await?;
                (blob_id, file)
            };
            let version = Version::new(blob_id, file);
            version_insert(&version).exec_within(tx).await?;
            let file_id = if file.is_none() {
                let (new_id, new_file) = new_file(id_or_path, version.id);
                let query = create_query(id_or_path, &new_file).await?;
                query.exec_within(tx).await?;
                new_id
            } else {
                file
            };
            file_version_insert(file_id, version.id)
                .exec_within(tx)
                .await?;
            file_where_update(file_id, version.id)
                .exec_within(tx)
                .await?;
            drop(tx.commit());
            done(None);
            Ok::<(), IoError>(())
        };
        if let Err(err) = upload.await {
            drop(tx.rollback());
            done(Some(&err));
        }
    }

    /// madeup-parallel/promises-native-async-await.js: 25 queries started, then
    /// `await Promise.all(queries)` (`try_join_all`); commit not waited for.
    pub async fn parallel(_stream: u64) {
        let tx = db_begin();
        let queries: Vec<_> = (0..PARALLEL_QUERIES)
            .map(|i| file_version_insert_index(i).exec_within(tx))
            .collect();
        match futures::future::try_join_all(queries).await {
            Ok(_) => {
                drop(tx.commit());
                done(None);
            }
            Err(err) => {
                drop(tx.rollback());
                done(Some(&err));
            }
        }
    }

    /// Spawns `n` requests (not awaited: their handles are dropped, as the harness ignores the
    /// promise `upload` returns) and sends the queued completions, in order, until all are done.
    ///
    /// Each run has a runtime of its own, as it has a queue of its own: the scheduler's run
    /// queue, which grows to hold every request's task, is then counted in every run's heap
    /// (a runtime kept from run to run would keep the buffer it grew in the first).
    /// tokio polls the `block_on` future (here the fake I/O's reactor) after every 61 tasks by
    /// default (`event_interval`): the first completions would fire when 61 requests had
    /// started, not 10,000. With no bound, it is polled only when no task is left to run, as
    /// Node runs its timers once its queues are empty.
    pub fn run<F: Future<Output = ()> + Send + 'static>(n: u64, upload: fn(u64) -> F) {
        QUEUE.with(Fifo::reset);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .event_interval(u32::MAX)
            .build()
            .expect("a current-thread runtime");
        runtime.block_on(async {
            let target = COMPLETED.with(Cell::get) + n;
            for k in 0..n {
                drop(tokio::spawn(upload(k)));
            }
            loop {
                // Let the woken tasks run until each waits on its next I/O.
                tokio::task::yield_now().await;
                let mut fired = 0;
                let queued = QUEUE.with(|queue| {
                    let mut queue = queue.0.borrow_mut();
                    let queued = queue.len() as u64;
                    for tx in queue.drain(..) {
                        fired += 1;
                        let _ = tx.send(None);
                    }
                    queued
                });
                note_fired(queued, fired);
                if fired == 0 && COMPLETED.with(Cell::get) == target {
                    break;
                }
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// The driver.

/// One variant's requests of one workload.
struct Runner {
    /// Runs `n` requests to completion.
    run: Box<dyn Fn(u64)>,
    /// The fake I/O calls each request makes before its first wait (doxbee: 1 where A and B
    /// are awaited in turn, 2 where they are joined; parallel: the 25 queries): with every
    /// request started before any completion fires, the queue holds `n` times this many then.
    first_calls: u64,
}

struct Variant {
    name: &'static str,
    doxbee: Option<Runner>,
    parallel: Option<Runner>,
}

#[derive(Clone, Copy, PartialEq)]
enum Workload {
    Doxbee,
    Parallel,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Doxbee => "doxbee",
            Workload::Parallel => "parallel",
        }
    }

    /// Fake I/O calls per request: doxbee A, B, C, E, F, G, H; parallel 25 queries and H.
    fn io_calls(self) -> u64 {
        match self {
            Workload::Doxbee => 7,
            Workload::Parallel => PARALLEL_QUERIES as u64 + 1,
        }
    }

    fn runner(self, variant: &Variant) -> Option<&Runner> {
        match self {
            Workload::Doxbee => variant.doxbee.as_ref(),
            Workload::Parallel => variant.parallel.as_ref(),
        }
    }
}

/// Launches `n` requests in one loop, then fires the queued completions until none is left.
fn run_queued(n: u64, upload: fn(u64), drive: fn(), reset: fn()) {
    reset();
    for k in 0..n {
        upload(k);
    }
    drive();
}

fn variants() -> Vec<Variant> {
    let queued = |upload: fn(u64), drive: fn(), reset: fn(), first_calls| -> Option<Runner> {
        Some(Runner {
            run: Box::new(move |n| run_queued(n, upload, drive, reset)),
            first_calls,
        })
    };
    let task = |run: Box<dyn Fn(u64)>, first_calls| Some(Runner { run, first_calls });
    const PARALLEL: u64 = PARALLEL_QUERIES as u64;
    vec![
        Variant {
            name: "callbacks (no library)",
            doxbee: queued(callbacks::doxbee, callbacks::drive, callbacks::reset, 1),
            parallel: queued(
                callbacks::parallel,
                callbacks::drive,
                callbacks::reset,
                PARALLEL,
            ),
        },
        Variant {
            name: "Deferred add_callback",
            doxbee: queued(send::doxbee_add_callback, send::drive, send::reset, 2),
            parallel: queued(
                send::parallel_add_callback,
                send::drive,
                send::reset,
                PARALLEL,
            ),
        },
        Variant {
            name: "Deferred chain!",
            doxbee: queued(send_chain::doxbee, send::drive, send::reset, 2),
            parallel: queued(send_chain::parallel, send::drive, send::reset, PARALLEL),
        },
        Variant {
            name: "LocalDeferred add_callback",
            doxbee: queued(local::doxbee_add_callback, local::drive, local::reset, 2),
            parallel: queued(
                local::parallel_add_callback,
                local::drive,
                local::reset,
                PARALLEL,
            ),
        },
        Variant {
            name: "LocalDeferred chain!",
            doxbee: queued(local_chain::doxbee, local::drive, local::reset, 2),
            parallel: queued(local_chain::parallel, local::drive, local::reset, PARALLEL),
        },
        Variant {
            name: "async/await (tokio)",
            doxbee: task(
                Box::new(|n| tokio_io::run(n, |k| tokio_io::doxbee(k, false))),
                1,
            ),
            parallel: task(Box::new(|n| tokio_io::run(n, tokio_io::parallel)), PARALLEL),
        },
        Variant {
            name: "async/await, A||B joined",
            doxbee: task(
                Box::new(|n| tokio_io::run(n, |k| tokio_io::doxbee(k, true))),
                2,
            ),
            parallel: None,
        },
        Variant {
            name: "Deferred add_errback last",
            doxbee: queued(send::doxbee_add_errback_last, send::drive, send::reset, 2),
            parallel: None,
        },
        Variant {
            name: "LocalDeferred add_errback last",
            doxbee: queued(
                local::doxbee_add_errback_last,
                local::drive,
                local::reset,
                2,
            ),
            parallel: None,
        },
    ]
}

/// The rows the targets compare.
const TOKIO: usize = 5;
const CHAIN: usize = 2;
const LOCAL_CHAIN: usize = 4;
/// The `add_callback` chains `chain!` replaces in doxbee (the errback after the last step), of
/// each kind.
const ERRBACK_LAST: usize = 7;
const LOCAL_ERRBACK_LAST: usize = 8;

/// One measured run: `n` requests, checked. Not inlined, so that `callgrind
/// --toggle-collect='*measured_run*'` collects exactly it.
#[inline(never)]
fn measured_run(workload: Workload, run: &Runner, n: u64) -> Duration {
    COMPLETED.with(|c| c.set(0));
    ERRORS.with(|e| e.set(0));
    FIRED.with(|f| f.set(0));
    QUEUED_AT_FIRST.with(|q| q.set(None));
    let start = Instant::now();
    (run.run)(black_box(n));
    let elapsed = start.elapsed();
    assert_eq!(COMPLETED.with(Cell::get), n, "every request calls done");
    assert_eq!(ERRORS.with(Cell::get), 0, "no request fails");
    assert_eq!(
        FIRED.with(Cell::get),
        n * workload.io_calls(),
        "every request makes {} fake I/O calls",
        workload.io_calls()
    );
    assert_eq!(
        QUEUED_AT_FIRST.with(Cell::get),
        Some(n * run.first_calls),
        "every request waits on its first fake I/O before any completes"
    );
    elapsed
}

fn main() {
    // A `Failure` captures a backtrace when RUST_BACKTRACE asks; measure the production default.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: single-threaded here: nothing else reads the environment yet.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let variants = variants();
    let workloads = [Workload::Doxbee, Workload::Parallel];
    if let [mode, workload, variant, n] = &args[..]
        && mode == "run"
    {
        // A warm-up and one run, for callgrind, dhat, massif.
        let (workload, run, n) = chosen(&variants, &workloads, workload, variant, n);
        measured_run(workload, run, WARMUP.min(n));
        black_box(measured_run(workload, run, n));
        return;
    }
    if let [mode, workload, variant, n] = &args[..]
        && mode == "alone"
    {
        // One variant alone in its process (no other variant's heap before it): the best of 20
        // runs after the warm-up, in ms.
        let (workload, run, n) = chosen(&variants, &workloads, workload, variant, n);
        measured_run(workload, run, WARMUP.min(n));
        let best = (0..20)
            .map(|_| measured_run(workload, run, n))
            .min()
            .expect("20 runs");
        println!("{:.2}", best.as_secs_f64() * 1e3);
        return;
    }
    let n: u64 = args
        .iter()
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(10_000);
    if args.iter().any(|arg| arg == "--instructions") {
        print_instructions(&variants, &workloads, n);
        return;
    }
    if args.iter().any(|arg| arg == "--sizes") {
        print_sizes(&variants, &workloads, n);
        return;
    }
    for workload in workloads {
        print_workload(&variants, workload, n);
    }
}

/// The workload (its name), the runner of `variant` (an index) on it, and the request count `n`,
/// from the command line.
fn chosen<'a>(
    variants: &'a [Variant],
    workloads: &[Workload],
    workload: &str,
    variant: &str,
    n: &str,
) -> (Workload, &'a Runner, u64) {
    let workload = *workloads
        .iter()
        .find(|w| w.name() == workload)
        .expect("doxbee or parallel");
    let variant = &variants[variant.parse::<usize>().expect("a variant index")];
    let run = workload
        .runner(variant)
        .expect("this variant runs this workload");
    (workload, run, n.parse().expect("a request count"))
}

fn print_workload(variants: &[Variant], workload: Workload, n: u64) {
    let runs: Vec<(usize, &Runner)> = variants
        .iter()
        .enumerate()
        .filter_map(|(index, variant)| Some((index, workload.runner(variant)?)))
        .collect();
    for (_, run) in &runs {
        measured_run(workload, run, WARMUP.min(n));
    }
    let mut best = vec![Duration::MAX; variants.len()];
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut rounds = 0;
    // Interleaved, so that load from other processes spreads over every variant, and each
    // round starts with the next variant, so that none always runs on the heap another left.
    while rounds < 5 || (rounds < 40 && Instant::now() < deadline) {
        for k in 0..runs.len() {
            let (index, run) = runs[(rounds + k) % runs.len()];
            best[index] = best[index].min(measured_run(workload, run, n));
        }
        rounds += 1;
    }
    let heaps: Vec<Option<Heap>> = variants
        .iter()
        .map(|variant| {
            let run = workload.runner(variant)?;
            Some(heap_of(|| {
                measured_run(workload, run, n);
            }))
        })
        .collect();
    let calls = (n * workload.io_calls()) as f64;
    println!();
    println!(
        "{}: {n} concurrent requests, {} fake I/O calls each (best of {rounds} runs; heap of one run)",
        workload.name(),
        workload.io_calls()
    );
    println!(
        "{:<31} {:>8} {:>6} {:>7} {:>8} {:>9} {:>7} {:>8} {:>9} {:>9}",
        "variant",
        "time ms",
        "x cb",
        "x tokio",
        "ns/call",
        "peak MiB",
        "x tokio",
        "peak B/c",
        "allocs/rq",
        "alloc B/c"
    );
    let seconds = |index: usize| best[index].as_secs_f64();
    let tokio_peak = heaps[TOKIO].as_ref().expect("tokio runs both").peak as f64;
    for (index, variant) in variants.iter().enumerate() {
        let Some(heap) = &heaps[index] else { continue };
        println!(
            "{:<31} {:>8.2} {:>6.2} {:>7.2} {:>8.1} {:>9.2} {:>7.2} {:>8.1} {:>9.1} {:>9.1}",
            variant.name,
            seconds(index) * 1e3,
            seconds(index) / seconds(0),
            seconds(index) / seconds(TOKIO),
            seconds(index) * 1e9 / calls,
            heap.peak as f64 / (1024.0 * 1024.0),
            heap.peak as f64 / tokio_peak,
            heap.peak as f64 / calls,
            heap.allocations as f64 / n as f64,
            heap.allocated as f64 / calls,
        );
    }
    let verdict = |ratio: f64, bar: f64| if ratio <= bar { "met" } else { "NOT MET" };
    for (index, bar) in [(CHAIN, 1.5), (LOCAL_CHAIN, 1.0)] {
        let time = seconds(index) / seconds(TOKIO);
        let peak = heaps[index].as_ref().expect("runs").peak as f64 / tokio_peak;
        println!(
            "target: {} at most {bar}x tokio: time {time:.2}x {}, peak heap {peak:.2}x {}",
            variants[index].name,
            verdict(time, bar),
            verdict(peak, bar)
        );
    }
    for (chained, hand_written) in [(CHAIN, ERRBACK_LAST), (LOCAL_CHAIN, LOCAL_ERRBACK_LAST)] {
        if heaps[hand_written].is_none() {
            continue; // doxbee only
        }
        // A ratio near 1.0 here moves with the heap the other variants leave: the instructions
        // (`--instructions`) and each variant run alone (`alone`) decide (BENCHMARKS.md).
        let time = seconds(chained) / seconds(hand_written);
        println!(
            "target: {} never slower than the add_callback chain it replaces ({}): time {time:.2}x \
             in this run (the instructions and `alone` runs decide)",
            variants[chained].name, variants[hand_written].name,
        );
    }
}

/// `--sizes`: the allocations of one request, by size class, for each variant (classes with
/// at least one allocation per 10 requests).
fn print_sizes(variants: &[Variant], workloads: &[Workload], n: u64) {
    for &workload in workloads {
        println!();
        println!(
            "{}: allocations per request by size (size class in bytes: count)",
            workload.name()
        );
        for variant in variants {
            let Some(run) = workload.runner(variant) else {
                continue;
            };
            measured_run(workload, run, WARMUP.min(n));
            let heap = heap_of(|| {
                measured_run(workload, run, n);
            });
            let classes: Vec<String> = heap
                .by_size
                .iter()
                .enumerate()
                .filter(|(_, count)| **count as u64 >= n / 10)
                .map(|(class, count)| {
                    let size = if class == SIZE_CLASSES - 1 {
                        format!(">{}", 8 * (SIZE_CLASSES - 1))
                    } else {
                        format!("{}", 8 * class)
                    };
                    format!("{size}:{:.2}", *count as f64 / n as f64)
                })
                .collect();
            println!("{:<31} {}", variant.name, classes.join(" "));
        }
    }
}

/// `--instructions`: instructions per request of each variant, counted by callgrind (they do not
/// depend on the machine's load): `(Ir(n requests) - Ir(n / 2 requests)) / (n - n / 2)`.
fn print_instructions(variants: &[Variant], workloads: &[Workload], n: u64) {
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("bluebird --instructions: valgrind not found (apt-get install valgrind)");
        return;
    }
    let me = std::env::current_exe().expect("the bench binary");
    let count = |workload: Workload, variant: usize, requests: u64| -> f64 {
        let output = Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(&me)
            .args(["run", workload.name(), &variant.to_string()])
            .arg(requests.to_string())
            .output()
            .expect("valgrind runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        stderr
            .lines()
            .find_map(|line| line.split_once("Collected :")?.1.trim().parse().ok())
            .unwrap_or_else(|| panic!("no callgrind total in:\n{stderr}"))
    };
    for &workload in workloads {
        println!();
        println!(
            "{}: instructions per request (callgrind, Ir): (Ir({n}) - Ir({})) / {}",
            workload.name(),
            n / 2,
            n - n / 2
        );
        println!(
            "{:<31} {:>10} {:>7} {:>7} {:>9}",
            "variant", "Ir/req", "x cb", "x tokio", "Ir/call"
        );
        let per_request: Vec<Option<f64>> = variants
            .iter()
            .enumerate()
            .map(|(index, variant)| {
                workload.runner(variant)?;
                let long = count(workload, index, n);
                let short = count(workload, index, n / 2);
                Some((long - short) / (n - n / 2) as f64)
            })
            .collect();
        let base = per_request[0].expect("callbacks run both");
        let tokio = per_request[TOKIO].expect("tokio runs both");
        for (variant, ir) in variants.iter().zip(&per_request) {
            let Some(ir) = ir else { continue };
            println!(
                "{:<31} {:>10.0} {:>7.2} {:>7.2} {:>9.0}",
                variant.name,
                ir,
                ir / base,
                ir / tokio,
                ir / workload.io_calls() as f64
            );
        }
    }
}
