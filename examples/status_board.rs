//! A status board on a calloop loop: a timer, a worker thread and local chains meet on one
//! thread, with no lock on the board.
//!
//! ```text
//! cargo run --example status_board --features calloop               # 10 ticks, then a summary
//! cargo run --example status_board --features calloop -- --ticks 20
//! ```
//!
//! Every 100 ms a calloop `Timer` ticks on the loop's thread and asks the sensor for a reading.
//! The sensor is a thread of its own (as a device driver's or a C library's callback thread
//! would be); the request carries a `HomeResolver`, which the sensor fires on its own thread
//! (Twisted's `reactor.callFromThread(d.callback, reading)`), and the reading comes home through
//! the loop's `Inbox` (`Inbox::on_calloop`: a ping wakes the loop). Each reading is waited for by
//! a local `chain!` with a deadline — `add_timeout` on a `CalloopClock`, calloop's own timers —
//! whose steps put it on the board, an `Rc<RefCell<..>>` no other thread can see, and print a
//! line. Every fourth reading is slow and misses its deadline. After the last tick and its
//! reading the program prints a summary and exits with 0.

use std::cell::RefCell;
use std::io::Write;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use calloop::EventLoop;
use calloop::timer::{TimeoutAction, Timer};
use deferred::{CalloopClock, Failure, HomeResolver, LocalDeferred, TimedOut, chain};

/// How often the board asks for a reading.
const PERIOD: Duration = Duration::from_millis(100);
/// How long it waits for one.
const DEADLINE: Duration = Duration::from_millis(150);
/// How long the sensor takes, and how long when it is slow (every `SLOW_EVERY`th reading).
const FAST: Duration = Duration::from_millis(10);
const SLOW: Duration = Duration::from_millis(400);
const SLOW_EVERY: u32 = 4;

/// A temperature, in tenths of a degree (so the summary's arithmetic is exact).
#[derive(Clone, Copy, Debug)]
struct Reading {
    tenths: i64,
}

fn degrees(tenths: i64) -> String {
    format!("{}.{} °C", tenths / 10, tenths % 10)
}

/// What the loop's thread knows: the board. Only that thread touches it (the timer's callback
/// and the chains' steps), so it is a `RefCell` in an `Rc`.
#[derive(Default)]
struct Board {
    ticks: u32,
    /// Readings asked for whose chain has not ended yet.
    waiting: u32,
    readings: Vec<i64>,
    late: u32,
    failed: u32,
    /// Why a line could not be printed (stdout closed, as by `| head -1`): the loop stops.
    stdout_error: Option<std::io::Error>,
}

/// Prints `line`; a stdout that cannot be written is kept on the board, and stops the loop
/// (rather than panic in a step: `println!` would).
fn say(board: &RefCell<Board>, line: &str) {
    if let Err(error) = writeln!(std::io::stdout(), "{line}") {
        board.borrow_mut().stdout_error.get_or_insert(error);
    }
}

impl Board {
    fn record(&mut self, reading: Reading) -> String {
        self.readings.push(reading.tenths);
        let low = self.readings.iter().min().copied().unwrap_or_default();
        let high = self.readings.iter().max().copied().unwrap_or_default();
        format!(
            "{}  (low {}, high {})",
            degrees(reading.tenths),
            degrees(low),
            degrees(high)
        )
    }

    fn summary(&self) -> String {
        let mut line = format!(
            "summary: {} ticks, {} readings, {} late, {} failed",
            self.ticks,
            self.readings.len(),
            self.late,
            self.failed
        );
        if let (Some(low), Some(high)) = (self.readings.iter().min(), self.readings.iter().max()) {
            let n = self.readings.len() as i64;
            let hundredths = (self.readings.iter().sum::<i64>() * 10 + n / 2) / n;
            line += &format!(
                "; low {}, high {}, mean {}.{:02} °C",
                degrees(*low),
                degrees(*high),
                hundredths / 100,
                hundredths % 100
            );
        }
        line
    }
}

/// A request to the sensor: which tick, and the resolver to answer on.
struct Ask {
    tick: u32,
    answer: HomeResolver<Reading>,
}

/// The sensor's thread: it takes a reading for each request (several at once, each taking its
/// time) and fires each request's `HomeResolver` when its reading is ready. It ends when the
/// board stops asking.
fn sensor(asks: mpsc::Receiver<Ask>) {
    let mut taking: Vec<(Instant, Ask)> = Vec::new();
    loop {
        let next = taking.iter().map(|(ready, _)| *ready).min();
        let asked = match next {
            Some(ready) => asks.recv_timeout(ready.saturating_duration_since(Instant::now())),
            None => asks
                .recv()
                .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match asked {
            Ok(ask) => {
                let takes = if ask.tick % SLOW_EVERY == 0 {
                    SLOW
                } else {
                    FAST
                };
                taking.push((Instant::now() + takes, ask));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The board has stopped asking: a reading still being taken is dropped (its chain
            // ended at its deadline).
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        let (ready, still): (Vec<_>, Vec<_>) =
            taking.into_iter().partition(|(ready, _)| *ready <= now);
        taking = still;
        for (_, ask) in ready {
            // On this thread; the chain waiting for it goes on on the loop's thread. A reading
            // that comes after its deadline is ignored there: its Deferred has timed out.
            let tenths = 200 + i64::from(ask.tick * 37 % 50);
            ask.answer.callback(Reading { tenths });
        }
    }
}

/// Waits for the reading of `tick` (for [`DEADLINE`] at most), then puts it on the board and
/// prints it: a local chain, whose steps share the board with the loop.
fn show(
    reading: LocalDeferred<Reading>,
    tick: u32,
    board: &Rc<RefCell<Board>>,
    clock: &CalloopClock<()>,
) -> LocalDeferred<()> {
    let (shown, late, failed, done) = (board.clone(), board.clone(), board.clone(), board.clone());
    chain! {
        reading.add_timeout(DEADLINE, clock)
        then |reading| {
            let line = shown.borrow_mut().record(reading);
            say(&shown, &format!("tick {tick:>2}: {line}"));
        }
        catch |_timed_out: TimedOut| {
            late.borrow_mut().late += 1;
            say(&late, &format!("tick {tick:>2}: no reading within {DEADLINE:?}, skipped"));
        }
        catch |f| {
            failed.borrow_mut().failed += 1;
            say(&failed, &format!("tick {tick:>2}: the reading failed: {f}"));
        }
        finally || done.borrow_mut().waiting -= 1
    }
}

const USAGE: &str = "usage: status_board [--ticks N]   (N from 1 to 1000; 10 if not given)";

/// The number of ticks; `Ok(None)` for `--help`.
fn parse_args() -> Result<Option<u32>, String> {
    let mut ticks = 10;
    // `args_os`, not `args`, which panics on an argument that is not UTF-8.
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--help" | "-h") => return Ok(None),
            Some("--ticks") => match args.next() {
                None => return Err("`--ticks` needs a number".into()),
                Some(n) => match n.to_str().and_then(|n| n.parse().ok()) {
                    Some(n @ 1..=1000) => ticks = n,
                    _ => {
                        let n = n.to_string_lossy();
                        return Err(format!("`--ticks {n}`: N is a number from 1 to 1000"));
                    }
                },
            },
            _ => return Err(format!("unexpected argument `{}`", arg.to_string_lossy())),
        }
    }
    Ok(Some(ticks))
}

fn main() -> ExitCode {
    let ticks = match parse_args() {
        Ok(Some(ticks)) => ticks,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{USAGE}\n{message}");
            return ExitCode::from(2);
        }
    };
    match run(ticks) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("status board stopped: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn run(ticks: u32) -> Result<(), Failure> {
    let mut event_loop: EventLoop<'static, ()> = EventLoop::try_new()?;
    let handle = event_loop.handle();
    // This thread's inbox, drained in the loop's dispatch: the readings come home through it.
    let inbox = deferred::Inbox::on_calloop(&handle)?;
    let clock = CalloopClock::new(handle.clone());
    let board = Rc::new(RefCell::new(Board::default()));

    let (asks, sensor_asks) = mpsc::channel::<Ask>();
    let sensor = std::thread::spawn(move || sensor(sensor_asks));

    say(
        &board,
        &format!(
            "status board: {ticks} ticks, one every {PERIOD:?}; a reading later than {DEADLINE:?} is skipped"
        ),
    );
    let (home, ticking, ask) = (inbox.clone(), board.clone(), asks.clone());
    handle
        .insert_source(Timer::from_duration(PERIOD), move |deadline, _, _| {
            let tick = {
                let mut board = ticking.borrow_mut();
                board.ticks += 1;
                board.waiting += 1;
                board.ticks
            };
            let (reading, answer) = home.pending::<Reading, Failure>();
            // If the sensor is gone, the request (and its resolver) is dropped, and the
            // reading fails with `NeverFired`: the chain counts it as failed.
            let _ = ask.send(Ask { tick, answer });
            // The chain runs by itself from here: nothing needs its end but the board.
            drop(show(reading, tick, &ticking, &clock));
            if tick < ticks {
                TimeoutAction::ToInstant(deadline + PERIOD)
            } else {
                TimeoutAction::Drop
            }
        })
        .map_err(|inserted| Failure::msg(format!("cannot start the timer: {}", inserted.error)))?;

    // The loop: sleep until a timer or a ping, run what is due, until every tick's chain ended.
    while {
        let board = board.borrow();
        board.ticks < ticks || board.waiting > 0
    } {
        if let Some(error) = board.borrow_mut().stdout_error.take() {
            return Err(Failure::msg(format!("cannot write to stdout: {error}")));
        }
        event_loop.dispatch(None, &mut ())?;
    }
    let summary = board.borrow().summary();
    say(&board, &summary);
    if let Some(error) = board.borrow_mut().stdout_error.take() {
        return Err(Failure::msg(format!("cannot write to stdout: {error}")));
    }

    // Stop asking (the sensor thread ends), then stop the loop's inbox.
    drop(asks);
    sensor
        .join()
        .map_err(|_| Failure::msg("the sensor thread panicked"))?;
    drop(inbox);
    Ok(())
}
