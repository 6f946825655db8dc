//! The selection belongs to a letter, never to a row index. Rows are store positions,
//! which never change within a stream, so arrivals move the cursor's row with its
//! letter. Only while the cursor is on the newest letter, following is on and nothing
//! is open over the list does the view follow new letters (as `less +F` does);
//! otherwise they are counted as `N new` in the header until the cursor reaches them.
//! The triage board keeps its group by query the same way.

use super::app::{App, Screen};
use crate::engine::LetterId;
use crate::engine::read::counted::Counted;
use crate::engine::read::filter::Filter;

impl App {
    /// Store position of display row `i`.
    pub fn position(&self, i: usize) -> Option<usize> {
        let n = self.visible_len();
        let k = (i < n).then(|| if self.list.newest_first { n - 1 - i } else { i })?;
        match &self.list.view {
            Some(v) => v.get(k).map(|&p| p as usize),
            None => Some(k),
        }
    }

    /// Display row of store position `pos`, when it is shown.
    pub fn row_of(&self, pos: usize) -> Option<usize> {
        let n = self.visible_len();
        let k = match &self.list.view {
            // The view lists store positions in increasing order.
            Some(v) => v.binary_search(&u32::try_from(pos).ok()?).ok()?,
            None => (pos < n).then_some(pos)?,
        };
        Some(if self.list.newest_first { n - 1 - k } else { k })
    }

    /// The loaded letters matching the index-only `query` (a triage group's), as the
    /// set a bulk action is bound to; a query that does not parse counts nothing.
    pub(super) fn matching_rows(&self, query: &str) -> Counted {
        let Ok(f) = Filter::parse(query, self.now_ms) else {
            return Counted::default();
        };
        let ids: Vec<LetterId> = (0..self.store.len())
            .filter(|&p| {
                self.store
                    .row(p)
                    .is_some_and(|r| f.matches_row(r, &self.store))
            })
            .filter_map(|p| self.store.id(p))
            .collect();
        ids.iter().collect()
    }

    /// The selected letter's id.
    pub fn selected_id(&self) -> Option<LetterId> {
        self.position(self.list.selected)
            .and_then(|p| self.store.id(p))
    }

    /// Selects display row `i` (clamped) and scrolls it into view.
    pub(super) fn select(&mut self, i: usize) {
        let n = self.visible_len();
        self.list.selected = if n == 0 { 0 } else { i.min(n - 1) };
        if self.list.selected < self.list.scroll {
            self.list.scroll = self.list.selected;
        } else if self.list.selected >= self.list.scroll + self.list.page.max(1) {
            self.list.scroll = self.list.selected + 1 - self.list.page.max(1);
        }
        if self.at_newest() {
            self.list.unseen = 0;
        }
    }

    /// The newest letter's display row.
    fn newest_row(&self) -> usize {
        if self.list.newest_first {
            0
        } else {
            self.visible_len().saturating_sub(1)
        }
    }

    /// The cursor is on the newest letter (or the list is empty).
    pub fn at_newest(&self) -> bool {
        self.visible_len() == 0 || self.list.selected == self.newest_row()
    }

    /// Arrivals move the cursor to the newest letter now.
    pub(super) fn following(&self) -> bool {
        self.list.follow && self.at_newest() && self.screen == Screen::List && self.dialog.is_none()
    }

    /// Selects the newest letter.
    pub(super) fn select_newest(&mut self) {
        self.select(self.newest_row());
    }

    /// Keeps the letter at store position `anchor` selected, its row on the same line
    /// of the screen when it can be.
    pub(super) fn keep_selected(&mut self, anchor: Option<usize>) {
        let Some(row) = anchor.and_then(|p| self.row_of(p)) else {
            self.select(self.list.selected);
            return;
        };
        let moved = row.saturating_sub(self.list.selected);
        self.list.scroll += moved;
        self.list.selected = row;
        self.select(row);
    }

    /// `f`: on the newest letter while following, stop following; otherwise follow
    /// again from the newest letter.
    pub(super) fn toggle_follow(&mut self) {
        if self.list.follow && self.at_newest() {
            self.list.follow = false;
            self.status = "not following: the cursor stays on its letter".into();
        } else {
            self.list.follow = true;
            self.select_newest();
            self.status = "following new letters".into();
        }
    }

    /// Recomputes the triage board, keeping the selected group by its query.
    pub(super) fn refresh_groups(&mut self) {
        let chosen = self
            .triage
            .groups
            .get(self.triage.selected)
            .map(|g| g.query());
        self.triage.groups = crate::engine::read::triage::groups(&self.store);
        (self.triage.of, self.triage.ms) = (self.store.len(), self.now_ms);
        self.triage.selected = chosen
            .and_then(|q| self.triage.groups.iter().position(|g| g.query() == q))
            .unwrap_or(self.triage.selected)
            .min(self.triage.groups.len().saturating_sub(1));
    }
}

#[cfg(test)]
#[path = "selection_tests.rs"]
mod tests;
