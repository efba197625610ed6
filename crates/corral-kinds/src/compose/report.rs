//! Where the errors and warnings of one Compose file go: each said once, where it is.

use std::collections::HashSet;
use std::sync::Arc;

use crate::base::diagnostic::{ConfigErrors, Origin, SourceFile};
use crate::base::yaml::Span;

/// Where errors go: each one once (an anchor used by several services would otherwise
/// report its errors once per use).
pub(super) struct Report<'a> {
    pub(super) file: &'a Arc<SourceFile>,
    pub(super) errors: &'a mut ConfigErrors,
    pub(super) seen: HashSet<(usize, usize, String)>,
    pub(super) count: usize,
    /// `FILE:LINE:COL: message`, in the order found, each once.
    pub(super) warnings: Vec<String>,
}

impl Report<'_> {
    /// What the CLI ignores or converts harmlessly: deployed, and said.
    pub(super) fn warn(&mut self, span: Span, message: impl Into<String>) {
        let origin = Origin {
            file: self.file.clone(),
            span,
        };
        let warning = format!("{origin}: {}", message.into());
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    pub(super) fn error(
        &mut self,
        span: Span,
        message: impl Into<String>,
        label: &str,
        help: Option<String>,
    ) {
        let message = message.into();
        if !self.seen.insert((span.start, span.end, message.clone())) {
            return;
        }
        let origin = Origin {
            file: self.file.clone(),
            span,
        };
        self.errors.push_at(&origin, message, label).help = help;
        self.count += 1;
    }
}
