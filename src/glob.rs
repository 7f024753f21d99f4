//! Wildcard patterns of LIST, NLST and STAT: `*`, `?` and `[...]` (ranges,
//! `!` or `^` to negate) in one path component, no escapes. The client
//! writes the pattern, and globbing has a history of denial of service in
//! FTP servers (vsftpd CVE-2011-0762, pure-ftpd CVE-2011-0418): a pattern
//! is at most `MAX_PATTERN` bytes, and matching is iterative with a single
//! backtrack point for `*`, so a name costs at most about
//! len(name) x len(pattern) steps: no recursion, no regex, no allocation.

/// The longest pattern accepted; a longer one is refused with 501.
pub const MAX_PATTERN: usize = 256;

/// Whether `component` holds a wildcard character.
pub fn has_wildcards(component: &[u8]) -> bool {
    component.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// Whether `name` matches `pattern` as a whole.
pub fn matches(pattern: &[u8], name: &[u8]) -> bool {
    matches_counting(pattern, name, &mut 0)
}

/// `matches`, adding to `steps` each pattern byte it looks at: the cost a
/// unit test bounds.
fn matches_counting(pattern: &[u8], name: &[u8], steps: &mut u64) -> bool {
    let (mut p, mut n) = (0, 0);
    // After a `*`: the pattern index past it, and the name index it was
    // last tried at. A later `*` replaces it: the match up to that star is
    // then fixed, which is why one backtrack point is enough.
    let mut star: Option<(usize, usize)> = None;
    loop {
        *steps += 1;
        if p < pattern.len() {
            if pattern[p] == b'*' {
                p += 1;
                star = Some((p, n));
                continue;
            }
            if n < name.len() {
                if let Some(next) = one(pattern, p, name[n], steps) {
                    p = next;
                    n += 1;
                    continue;
                }
            }
        } else if n == name.len() {
            return true;
        }
        // Mismatch: let the last `*` take one more byte of the name.
        match star {
            Some((after, tried)) if tried < name.len() => {
                star = Some((after, tried + 1));
                p = after;
                n = tried + 1;
            }
            _ => return false,
        }
    }
}

/// Whether the pattern element at `p` (a byte, `?` or a class) matches
/// `byte`: the index past the element if it does.
fn one(pattern: &[u8], p: usize, byte: u8, steps: &mut u64) -> Option<usize> {
    match pattern[p] {
        b'?' => Some(p + 1),
        b'[' => match class(pattern, p, byte, steps) {
            Some((true, next)) => Some(next),
            Some((false, _)) => None,
            // No closing `]`: the `[` is an ordinary byte.
            None => (byte == b'[').then_some(p + 1),
        },
        literal => (byte == literal).then_some(p + 1),
    }
}

/// A class `[...]` starting at `p`: whether it takes `byte`, and the index
/// past its `]`; `None` when it is not closed. A `]` right after the `[`
/// (or the `!`/`^`) is a member, as in the shell.
fn class(pattern: &[u8], p: usize, byte: u8, steps: &mut u64) -> Option<(bool, usize)> {
    let mut i = p + 1;
    let negated = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negated {
        i += 1;
    }
    let first = i;
    let mut found = false;
    while i < pattern.len() {
        *steps += 1;
        let low = pattern[i];
        if low == b']' && i > first {
            return Some((found != negated, i + 1));
        }
        let range = pattern.get(i + 1) == Some(&b'-')
            && pattern.get(i + 2).is_some_and(|&high| high != b']');
        if range {
            found |= (low..=pattern[i + 2]).contains(&byte);
            i += 3;
        } else {
            found |= low == byte;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_wildcards() {
        assert!(matches(b"*.txt", b"a.txt"));
        assert!(matches(b"*.txt", b".txt"));
        assert!(!matches(b"*.txt", b"a.txt.gz"));
        assert!(matches(b"a?c", b"abc"));
        assert!(!matches(b"a?c", b"ac"));
        assert!(matches(b"*", b""));
        assert!(matches(b"", b""));
        assert!(!matches(b"", b"a"));
        assert!(matches(b"a*b*c", b"axxbyyc"));
        assert!(matches(b"a*b*c", b"abcbc"));
        assert!(!matches(b"a*b*c", b"abcb"));
        assert!(matches(b"**a", b"ba"));
        assert!(matches(b"[abc]x", b"bx"));
        assert!(!matches(b"[abc]x", b"dx"));
        assert!(matches(b"[a-c]*", b"cat"));
        assert!(!matches(b"[!a-c]*", b"cat"));
        assert!(matches(b"[^a-c]*", b"dog"));
        assert!(matches(b"[]]", b"]"));
        assert!(matches(b"[!]]", b"a"));
        assert!(matches(b"[a-]", b"-"));
        assert!(matches(b"[", b"["));
        assert!(matches(b"a[b", b"a[b"));
        assert!(!matches(b"a[b", b"ab"));
        assert!(matches(b"\xc3\xa9*", b"\xc3\xa9t\xc3\xa9"));
    }

    #[test]
    fn what_has_wildcards() {
        assert!(has_wildcards(b"*.txt"));
        assert!(has_wildcards(b"a?"));
        assert!(has_wildcards(b"[ab]"));
        assert!(!has_wildcards(b"plain.txt"));
        assert!(!has_wildcards(b"a]b"));
    }

    /// The CVE-2011-0762 shape: `*a*a*a...` against a long run of `a`s
    /// that ends in `b`. A recursive matcher takes exponential time here;
    /// this one stays within len(name) x len(pattern) steps.
    #[test]
    fn hostile_patterns_cost_at_most_name_times_pattern() {
        let pattern: Vec<u8> = b"*a".repeat(MAX_PATTERN / 2);
        let mut name = vec![b'a'; 199];
        name.push(b'b');
        let mut steps = 0;
        assert!(!matches_counting(&pattern, &name, &mut steps));
        let bound = ((name.len() + 1) * (pattern.len() + 1)) as u64;
        assert!(steps <= bound, "{steps} steps > {bound}");
        // Classes look at their bytes too: twice the bound covers them.
        let pattern: Vec<u8> = b"*[a-z]".repeat(MAX_PATTERN / 6);
        let mut steps = 0;
        assert!(matches_counting(&pattern, &name, &mut steps));
        let bound = 2 * ((name.len() + 1) * (pattern.len() + 1)) as u64;
        assert!(steps <= bound, "{steps} steps > {bound}");
        let pattern: Vec<u8> = b"*[!a]x".repeat(MAX_PATTERN / 6);
        let mut steps = 0;
        assert!(!matches_counting(&pattern, &name, &mut steps));
        assert!(steps <= bound, "{steps} steps > {bound}");
    }
}
