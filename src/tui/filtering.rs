//! Applying a filter: one that only looks at index fields (source topic, reason,
//! state, time) answers at once from the rows already loaded; one that looks inside
//! payloads re-reads the DLQ with the filter, hits arriving as they are found.

use super::app::{App, Effect};
use crate::engine::read::filter::Filter;

impl App {
    /// Rows the list shows.
    pub fn visible_len(&self) -> usize {
        self.list.view.as_ref().map_or(self.store.len(), Vec::len)
    }

    /// Applies the checked query `query` (empty clears the filter).
    pub(super) fn apply_filter(&mut self, query: String) -> Vec<Effect> {
        self.filter = query;
        self.status = if self.filter.is_empty() {
            "filter cleared".into()
        } else {
            format!("filtering: {}", self.filter)
        };
        let parsed = Filter::parse(&self.filter, self.now_ms).ok();
        let index_only = parsed
            .as_ref()
            .filter(|f| !f.is_empty() && f.index_only())
            .cloned();
        if self.filter.is_empty() || index_only.is_some() {
            // Answer from the rows: they must hold every letter, not a previous search's hits.
            let mut effects = Vec::new();
            // The selected letter stays selected when the new filter keeps it.
            let mut anchor = self.position(self.list.selected);
            if self.stream_filtered {
                effects = self.restream(None);
                anchor = None;
            }
            self.list.row_filter = index_only;
            self.list.view = self.list.row_filter.as_ref().map(|_| Vec::new());
            self.extend_view(0);
            match anchor.and_then(|p| self.row_of(p)) {
                Some(row) => self.select(row),
                None => self.select(0),
            }
            return effects;
        }
        let f = Some(self.filter.clone());
        self.restream(f)
    }

    /// Adds the rows from store position `from` on that match the index-only filter.
    pub(super) fn extend_view(&mut self, from: usize) {
        let (Some(f), Some(view)) = (&self.list.row_filter, self.list.view.as_mut()) else {
            return;
        };
        for pos in from..self.store.len() {
            if let Some(r) = self.store.row(pos)
                && f.matches_row(r, &self.store)
            {
                view.push(u32::try_from(pos).unwrap_or(u32::MAX));
            }
        }
    }
}
