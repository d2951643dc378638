//! One line of a scenario, split into its indentation and tokens.

use super::error::ScenarioErrorKind;

/// One non-blank line: indentation and space-separated tokens, comment removed.
pub(super) struct Line<'a> {
    pub(super) indent: usize,
    /// The text after the indentation, comment removed, trailing spaces trimmed.
    pub(super) body: &'a str,
    pub(super) tokens: Vec<&'a str>,
}

impl<'a> Line<'a> {
    /// `Ok(None)` for a blank or comment-only line.
    pub(super) fn split(raw: &'a str) -> Result<Option<Line<'a>>, ScenarioErrorKind> {
        let content = raw.split_once('#').map_or(raw, |(before, _)| before);
        if content.contains('\t') {
            return Err(ScenarioErrorKind::Tab);
        }
        // `lines()` strips `\r\n`; a lone `\r` at the very end (a CRLF file without its final
        // newline) is line-ending debris too, not part of the last token.
        let content = content.trim_end_matches([' ', '\r']);
        let body = content.trim_start_matches(' ');
        if body.is_empty() {
            return Ok(None);
        }
        Ok(Some(Line {
            // Only ASCII spaces were trimmed, so bytes == spaces.
            indent: content.len() - body.len(),
            body,
            tokens: body.split(' ').filter(|t| !t.is_empty()).collect(),
        }))
    }

    pub(super) fn keyword(&self) -> &'a str {
        self.tokens.first().copied().unwrap_or("")
    }

    /// The tokens after the keyword.
    pub(super) fn args(&self) -> &[&'a str] {
        self.tokens.get(1..).unwrap_or(&[])
    }

    /// The raw text after the first `n` tokens (inner spacing preserved), trimmed.
    pub(super) fn rest_after(&self, n: usize) -> &'a str {
        let mut rest = self.body;
        for _ in 0..n {
            rest = rest
                .trim_start_matches(' ')
                .split_once(' ')
                .map_or("", |(_, after)| after);
        }
        rest.trim_matches(' ')
    }
}
