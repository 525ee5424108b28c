//! `muttr chat [CONTACT]`: a terminal chat on the client library (ratatui + crossterm).
//!
//! - [`history`]: the local history (SQLite), where messages live once read;
//! - [`view`]: the screen, drawn from a plain state (snapshot-tested).
//!
//! On start it plays back the inbox (messages that arrived while it was not running), stores
//! them and purges the pod up to what it stored (PROFILE P-X1); then it listens (reconnecting
//! and playing back after a drop) and sends what is typed. Each line carries a mark: `sent`,
//! `sending…`, `verified`, or — loud, white on red — `NOT VERIFIED` / `UNREADABLE` / `NOT SENT`.
//! Esc or Ctrl-C quits and restores the terminal; a resize redraws.

mod history;
mod view;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use crossterm::event::{Event, EventStream, KeyCode, KeyEventKind, KeyModifiers};
use futures::StreamExt;
use muttr_node::client::{Client, Delivery, Heard};
use tokio::sync::mpsc;

use crate::Failure;
use crate::home::Home;
use crate::net::{NetArgs, client};
use history::{History, Line, Mark};
use view::State;

/// Arguments of `muttr chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Start a conversation with this user (`alias@host`); else the most recent one.
    contact: Option<String>,
}

/// A delivery as a history line.
fn incoming(d: &Delivery) -> Line {
    let (n, text, mark) = match d {
        Ok(r) => (
            &r.notification,
            String::from_utf8_lossy(&r.plaintext).into_owned(),
            if r.verdict.is_good() {
                Mark::Verified
            } else {
                Mark::NotVerified(r.verdict.code().to_string())
            },
        ),
        Err(u) => (
            &u.notification,
            String::new(),
            Mark::Unreadable(u.error.to_string()),
        ),
    };
    Line {
        n: 0,
        peer: n.sender.user_id.clone(),
        outgoing: false,
        text,
        mark,
        key: Some(n.key.clone()),
        timestamp: n.timestamp,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct App {
    history: History,
    state: State,
}

impl App {
    fn refresh(&mut self) -> Result<(), Failure> {
        let mut contacts = self.history.peers()?;
        // Keep the selected contact selected, and any contact named on the command line.
        let selected = self.state.peer().map(str::to_string);
        for c in self.state.contacts.iter() {
            if !contacts.contains(c) {
                contacts.push(c.clone());
            }
        }
        self.state.contacts = contacts;
        if let Some(p) = selected {
            self.state.selected = self
                .state
                .contacts
                .iter()
                .position(|c| *c == p)
                .unwrap_or(0);
        }
        self.state.lines = match self.state.peer() {
            Some(p) => self.history.conversation(p)?,
            None => Vec::new(),
        };
        Ok(())
    }
}

pub fn chat(home: &Home, net: NetArgs, a: ChatArgs) -> Result<ExitCode, Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(home, net, a))
}

async fn run(home: &Home, net: NetArgs, a: ChatArgs) -> Result<ExitCode, Failure> {
    let (client, _, _seed) = client(home, &net).await?;
    let client = Arc::new(client);
    let history = History::open(home.dir())?;
    // Messages that came while we were away: into the history, then purged up to them.
    let notes = client.with_retry(|| client.notifications()).await?;
    let upto = muttr_node::client::highest_id(&notes);
    let mut all_read = true;
    for n in notes {
        let d = client.open(n).await;
        all_read &= d.is_ok();
        history.add(&incoming(&d))?;
    }
    if all_read && let Some(id) = upto {
        client.purge(Some(&id)).await?;
    }
    let me = client
        .user_id()
        .map_or_else(|| client.pubkeyhash(), |u| u.to_string());
    let mut app = App {
        history,
        state: State {
            me,
            contacts: a.contact.into_iter().collect(),
            status: "connecting…".into(),
            ..State::default()
        },
    };
    app.refresh()?;
    let mut sub = client.listener().await?;
    app.state.status = "connected".into();

    let mut terminal = ratatui::init();
    let result = event_loop(&mut terminal, &mut app, &client, &mut sub).await;
    ratatui::restore();
    result
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    client: &Arc<Client>,
    sub: &mut muttr_node::client::Listener<'_, muttr_node::client::TcpDialer>,
) -> Result<ExitCode, Failure> {
    let mut keys = EventStream::new();
    let (done_tx, mut done) = mpsc::unbounded_channel::<(i64, Result<String, String>)>();
    loop {
        terminal.draw(|f| view::draw(f, &app.state))?;
        tokio::select! {
            ev = keys.next() => {
                let Some(Ok(ev)) = ev else { return Ok(ExitCode::SUCCESS) };
                let Event::Key(k) = ev else { continue };  // a resize just redraws
                if k.kind != KeyEventKind::Press {
                    continue;
                }
                match k.code {
                    KeyCode::Esc => return Ok(ExitCode::SUCCESS),
                    KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                        return Ok(ExitCode::SUCCESS)
                    }
                    KeyCode::Tab | KeyCode::Down if !app.state.contacts.is_empty() => {
                        app.state.selected = (app.state.selected + 1) % app.state.contacts.len();
                        app.refresh()?;
                    }
                    KeyCode::BackTab | KeyCode::Up if !app.state.contacts.is_empty() => {
                        let n = app.state.contacts.len();
                        app.state.selected = (app.state.selected + n - 1) % n;
                        app.refresh()?;
                    }
                    KeyCode::Backspace => {
                        app.state.input.pop();
                    }
                    KeyCode::Enter => {
                        let text = std::mem::take(&mut app.state.input);
                        let Some(to) = app.state.peer().map(str::to_string) else { continue };
                        if text.trim().is_empty() {
                            continue;
                        }
                        let n = app.history.add(&Line {
                            n: 0,
                            peer: to.clone(),
                            outgoing: true,
                            text: text.clone(),
                            mark: Mark::Sending,
                            key: None,
                            timestamp: now_ms(),
                        })?;
                        app.refresh()?;
                        let (client, done_tx) = (client.clone(), done_tx.clone());
                        tokio::spawn(async move {
                            let r = client
                                .send(&to, text.as_bytes())
                                .await
                                .map(|r| r.key)
                                .map_err(|e| e.to_string());
                            let _ = done_tx.send((n, r));
                        });
                    }
                    KeyCode::Char(c) => app.state.input.push(c),
                    _ => {}
                }
            }
            heard = sub.next() => match heard {
                Heard::Entry(n) => {
                    let d = client.open(n.clone()).await;
                    app.history.add(&incoming(&d))?;
                    // Stored here: the pod may forget it (P-X1, only up to this entry).
                    if d.is_ok() && let Some(id) = &n.id {
                        let _ = client.purge(Some(id)).await;
                    }
                    app.refresh()?;
                }
                Heard::Dropped(why) => app.state.status = format!("connection lost ({why}); reconnecting"),
                Heard::Reconnected { missed } => {
                    app.state.status = format!("connected ({missed} arrived meanwhile)");
                }
            },
            Some((n, r)) = done.recv() => {
                match r {
                    Ok(key) => app.history.update(n, &Mark::Sent, Some(&key))?,
                    Err(e) => app.history.update(n, &Mark::Failed(e), None)?,
                }
                app.refresh()?;
            }
        }
    }
}
