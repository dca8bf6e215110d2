//! Drawing: [`draw`] renders an [`App`] into a ratatui [`Frame`] — a status line, the host list
//! and the port detail side by side, the event log below, and the help panel over them when it
//! is up. Pure (no terminal, no clock), so the tests draw into ratatui's `TestBackend` and read
//! the screen back.
//!
//! Only what fits is built: the host list and the log make rows for their visible window alone,
//! so a /16 sweep with thousands of hosts up costs the same per frame as a /24.

use crate::state::{App, HostPhase, HostView, Phase};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use rustmap_model::PortState;
use std::time::Duration;

/// The keys, as the help panel lists them.
pub const HELP: &[(&str, &str)] = &[
    ("↑ / k", "select the previous host"),
    ("↓ / j", "select the next host"),
    ("PgUp / PgDn", "move ten hosts"),
    ("Home g / End G", "first / last host"),
    ("h / ?", "show or hide this help"),
    ("Esc", "hide this help"),
    ("q / Ctrl-C", "quit; a running scan is cancelled, its results kept"),
];

/// Draw the whole screen.
pub fn draw(frame: &mut Frame, app: &mut App) {
    let [status, middle, log] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(6), Constraint::Percentage(30)]).areas(frame.area());
    let [hosts, ports] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
    draw_status(frame, app, status);
    draw_hosts(frame, app, hosts);
    draw_ports(frame, app, ports);
    draw_log(frame, app, log);
    if app.show_help {
        draw_help(frame);
    }
}

fn fmt_elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}.{}s", s, d.subsec_millis() / 100)
    }
}

fn draw_status(frame: &mut Frame, app: &App, area: Rect) {
    let s = &app.scan;
    let (phase, style) = match &s.phase {
        Phase::Starting => ("starting".to_string(), Style::new().fg(Color::Yellow)),
        Phase::Running => ("running".to_string(), Style::new().fg(Color::Green)),
        Phase::Stopping => ("stopping".to_string(), Style::new().fg(Color::Yellow)),
        Phase::Finished(o) if o == "completed" => ("finished".to_string(), Style::new().fg(Color::Cyan)),
        Phase::Finished(o) => (format!("finished ({o})"), Style::new().fg(Color::Red)),
    };
    let pct = s.fraction.map(|f| format!(" {:.0}%", f * 100.0)).unwrap_or_default();
    let line = Line::from(vec![
        Span::styled(" RustMap ", Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
        Span::raw(" "),
        Span::styled(format!("{phase}{pct}"), style.add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            " | up {} down {} active {} | probes {} replies {} | {} | h help  q quit",
            s.hosts.len(),
            s.hosts_down,
            s.hosts_active,
            s.probes_sent,
            s.replies,
            fmt_elapsed(s.elapsed)
        )),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

fn host_row(h: &HostView) -> Row<'static> {
    let addr = match &h.name {
        Some(n) => format!("{} ({n})", h.addr),
        None => h.addr.to_string(),
    };
    let status = match h.phase {
        HostPhase::Scanning => "scanning",
        HostPhase::Done => "up",
        HostPhase::TimedOut => "timed out",
    };
    Row::new(vec![
        Cell::from(addr),
        Cell::from(status),
        Cell::from(h.open.to_string()),
        Cell::from(h.closed.to_string()),
        Cell::from(h.filtered.to_string()),
        Cell::from(h.os.clone().unwrap_or_default()),
    ])
}

fn draw_hosts(frame: &mut Frame, app: &mut App, area: Rect) {
    let n = app.scan.hosts.len();
    app.selected = app.selected.min(n.saturating_sub(1));
    // Borders and the header row take three lines.
    let visible = usize::from(area.height.saturating_sub(3)).max(1);
    if app.selected < app.offset {
        app.offset = app.selected;
    } else if app.selected >= app.offset + visible {
        app.offset = app.selected + 1 - visible;
    }
    app.offset = app.offset.min(n.saturating_sub(visible));
    let rows: Vec<Row> = app.scan.hosts.iter().skip(app.offset).take(visible).map(host_row).collect();
    let selected = Style::new().add_modifier(Modifier::REVERSED);
    let rows = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| if app.offset + i == app.selected { r.style(selected) } else { r })
        .collect::<Vec<_>>();
    let title = format!(" Hosts: {n} up, {} down ", app.scan.hosts_down);
    let table = Table::new(
        rows,
        [
            Constraint::Fill(4),
            Constraint::Length(9),
            Constraint::Length(4),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Fill(2),
        ],
    )
    .header(
        Row::new(["HOST", "STATUS", "OPEN", "CLOSED", "FILT", "OS"]).style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .block(Block::bordered().title(title));
    frame.render_widget(table, area);
    if n == 0 {
        let inner = Rect { x: area.x + 2, y: area.y + 2, width: area.width.saturating_sub(4), height: 1 };
        let msg = if app.scan.finished() { "no host is up" } else { "waiting for hosts…" };
        frame.render_widget(Paragraph::new(msg).style(Style::new().fg(Color::DarkGray)), inner);
    }
}

fn state_style(s: PortState) -> Style {
    match s {
        PortState::Open => Style::new().fg(Color::Green),
        PortState::Closed => Style::new().fg(Color::Red),
        _ => Style::new().fg(Color::Yellow),
    }
}

fn draw_ports(frame: &mut Frame, app: &App, area: Rect) {
    let Some(h) = app.selected_host() else {
        frame.render_widget(Paragraph::new("").block(Block::bordered().title(" Ports ")), area);
        return;
    };
    let title = format!(" Ports of {} ", h.addr);
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // Above the table: the OS and what is counted but not listed.
    let listed_closed = h.ports.values().filter(|p| p.state == PortState::Closed).count() as u64;
    let listed_other = h.ports.values().filter(|p| !matches!(p.state, PortState::Open | PortState::Closed)).count();
    let mut summary = format!("{} open", h.open);
    let hidden_closed = h.closed.saturating_sub(listed_closed);
    let hidden_other = h.filtered.saturating_sub(listed_other as u64);
    if hidden_closed > 0 || hidden_other > 0 {
        summary.push_str(&format!("; not shown: {hidden_closed} closed, {hidden_other} filtered"));
    }
    let os = format!("OS: {}", h.os.as_deref().unwrap_or("-"));
    let [head, table_area] = Layout::vertical([Constraint::Length(2), Constraint::Min(1)]).areas(inner);
    frame.render_widget(Paragraph::new(vec![Line::from(summary), Line::from(os)]), head);
    let room = usize::from(table_area.height.saturating_sub(1));
    let total = h.ports.len();
    // The last row says how many did not fit rather than cutting them silently.
    let shown = if total > room { room.saturating_sub(1) } else { total };
    let mut rows: Vec<Row> = h
        .ports
        .values()
        .take(shown)
        .map(|p| {
            Row::new(vec![
                Cell::from(format!("{}/{}", p.port, p.protocol.as_str())),
                Cell::from(p.state.as_str()).style(state_style(p.state)),
                Cell::from(p.service.clone()),
                Cell::from(p.version.clone()),
            ])
        })
        .collect();
    if shown < total {
        rows.push(Row::new(vec![Cell::from(format!("… {} more", total - shown))]));
    }
    let table =
        Table::new(rows, [Constraint::Length(10), Constraint::Length(14), Constraint::Length(14), Constraint::Fill(1)])
            .header(Row::new(["PORT", "STATE", "SERVICE", "VERSION"]).style(Style::new().add_modifier(Modifier::BOLD)));
    frame.render_widget(table, table_area);
}

fn draw_log(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(" Events ");
    let room = usize::from(block.inner(area).height);
    let log = &app.scan.log;
    let lines: Vec<Line> = log
        .iter()
        .skip(log.len().saturating_sub(room))
        .map(|l| {
            let style = if l.warn { Style::new().fg(Color::Yellow) } else { Style::new() };
            Line::from(vec![
                Span::styled(format!("[{:>8}] ", fmt_elapsed(l.at)), Style::new().fg(Color::DarkGray)),
                Span::styled(l.text.clone(), style),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_help(frame: &mut Frame) {
    let area = frame.area();
    let width = area.width.min(76);
    let height = (HELP.len() as u16 + 6).min(area.height);
    let popup = Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height };
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:>15}  "), Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from("After the scan the screen stays up, marked finished, until q."));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(Block::bordered().title(" Help (h to close) ")),
        popup,
    );
}
