//! What the chat shows, drawn from a [`State`] alone (no terminal, no network), so every view
//! can be rendered on ratatui's `TestBackend` and snapshotted.
//!
//! ```text
//! ┌contacts──────┐┌alice@pod1─────────────────────────────────────┐
//! │> alice@pod1  ││ 12:01 alice: hi bob                  verified │
//! │  carol@pod2  ││ 12:02 you: hello                          sent │
//! │              ││ 12:03 alice: pay me   !! NOT VERIFIED (bad-…) │
//! └──────────────┘└───────────────────────────────────────────────┘
//! ┌message to alice@pod1 (Enter send · Tab contact · Esc quit)────┐
//! │ typed text_                                                   │
//! └───────────────────────────────────────────────────────────────┘
//!  bob@pod2 · connected
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line as TextLine, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, Paragraph, Wrap};

use super::history::{Line, Mark};

/// Everything on screen.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Who we are (`bob@pod2`).
    pub me: String,
    /// Contacts, most recent first.
    pub contacts: Vec<String>,
    /// The selected contact.
    pub selected: usize,
    /// The conversation with the selected contact, oldest first.
    pub lines: Vec<Line>,
    /// What is being typed.
    pub input: String,
    /// The status line (connection, last error).
    pub status: String,
}

impl State {
    /// The selected contact, if any.
    pub fn peer(&self) -> Option<&str> {
        self.contacts.get(self.selected).map(String::as_str)
    }
}

/// `HH:MM` (UTC) of a timestamp in ms.
fn clock(ms: u64) -> String {
    let secs = ms / 1000;
    format!("{:02}:{:02}", (secs / 3600) % 24, (secs / 60) % 60)
}

fn mark(m: &Mark) -> Span<'static> {
    let loud = Style::default()
        .fg(Color::White)
        .bg(Color::Red)
        .add_modifier(Modifier::BOLD);
    match m {
        Mark::Sending => Span::styled("sending…", Style::default().fg(Color::Yellow)),
        Mark::Sent => Span::styled("sent", Style::default().fg(Color::Green)),
        Mark::Failed(e) => Span::styled(format!("NOT SENT: {e}"), loud),
        Mark::Verified => Span::styled("verified", Style::default().fg(Color::Green)),
        Mark::NotVerified(v) => Span::styled(format!("!! NOT VERIFIED ({v})"), loud),
        Mark::Unreadable(e) => Span::styled(format!("!! UNREADABLE: {e}"), loud),
    }
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame<'_>, s: &State) {
    let [top, input, status] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let [contacts, convo] =
        Layout::horizontal([Constraint::Length(24), Constraint::Min(20)]).areas(top);

    let items: Vec<ListItem<'_>> = s
        .contacts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i == s.selected {
                ListItem::new(format!("> {c}")).style(Style::default().add_modifier(Modifier::BOLD))
            } else {
                ListItem::new(format!("  {c}"))
            }
        })
        .collect();
    f.render_widget(
        List::new(items).block(Block::default().borders(Borders::ALL).title("contacts")),
        contacts,
    );

    let peer = s.peer().unwrap_or("no contact: muttr chat ALIAS@HOST");
    let text: Vec<TextLine<'_>> = s
        .lines
        .iter()
        .map(|l| {
            let who = if l.outgoing {
                "you".to_string()
            } else {
                l.peer.split('@').next().unwrap_or("?").to_string()
            };
            TextLine::from(vec![
                Span::styled(clock(l.timestamp), Style::default().fg(Color::DarkGray)),
                Span::raw(format!(" {who}: {} ", l.text)),
                mark(&l.mark),
            ])
        })
        .collect();
    // Keep the newest lines in view.
    let height = convo.height.saturating_sub(2) as usize;
    let skip = text.len().saturating_sub(height);
    f.render_widget(
        Paragraph::new(text[skip..].to_vec())
            .wrap(Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(peer.to_string()),
            ),
        convo,
    );

    let title = match s.peer() {
        Some(p) => format!("message to {p} (Enter send · Tab contact · Esc quit)"),
        None => "no contact (Esc quit)".to_string(),
    };
    f.render_widget(
        Paragraph::new(format!("{}_", s.input))
            .block(Block::default().borders(Borders::ALL).title(title)),
        input,
    );
    f.render_widget(
        Paragraph::new(format!(" {} · {}", s.me, s.status))
            .style(Style::default().fg(Color::DarkGray)),
        status,
    );
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;

    fn line(n: i64, outgoing: bool, text: &str, mark: Mark) -> Line {
        Line {
            n,
            peer: "alice@pod1".into(),
            outgoing,
            text: text.into(),
            mark,
            key: None,
            timestamp: 43_260_000 + n as u64 * 60_000,
        }
    }

    fn render(s: &State, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, s)).unwrap();
        let buf = t.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..h {
            for x in 0..w {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn state() -> State {
        State {
            me: "bob@pod2".into(),
            contacts: vec!["alice@pod1".into(), "carol@pod2".into()],
            selected: 0,
            lines: vec![
                line(1, false, "hi bob", Mark::Verified),
                line(2, true, "hello alice", Mark::Sent),
                line(3, true, "are you there?", Mark::Sending),
                line(
                    4,
                    false,
                    "send me your password",
                    Mark::NotVerified("wrong-signer".into()),
                ),
                line(
                    5,
                    false,
                    "",
                    Mark::Unreadable("not found in the DHT".into()),
                ),
            ],
            input: "on my way".into(),
            status: "connected".into(),
        }
    }

    #[test]
    fn a_conversation_with_marks() {
        insta::assert_snapshot!(render(&state(), 100, 14));
    }

    #[test]
    fn a_narrow_terminal_wraps_and_keeps_the_newest_lines() {
        insta::assert_snapshot!(render(&state(), 60, 10));
    }

    #[test]
    fn no_contact_yet() {
        let s = State {
            me: "bob@pod2".into(),
            status: "connected".into(),
            ..State::default()
        };
        insta::assert_snapshot!(render(&s, 70, 8));
    }

    #[test]
    fn an_unverified_message_is_loud() {
        let mut t = Terminal::new(TestBackend::new(100, 14)).unwrap();
        t.draw(|f| draw(f, &state())).unwrap();
        let buf = t.backend().buffer();
        let row = (0..14)
            .find(|y| {
                (0..100)
                    .map(|x| buf[(x, *y)].symbol())
                    .collect::<String>()
                    .contains("NOT VERIFIED")
            })
            .expect("the mark is on screen");
        let x = (0..100).find(|x| buf[(*x, row)].symbol() == "!").unwrap();
        assert_eq!(buf[(x, row)].bg, Color::Red);
        assert!(buf[(x, row)].modifier.contains(Modifier::BOLD));
    }
}
