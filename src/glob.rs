//! Wildcard patterns of LIST, NLST and STAT: `*`, `?` and `[...]` (ranges,
//! `!` or `^` to negate) in one path component, no escapes. The client
//! writes the pattern, and globbing has a history of denial of service in
//! FTP servers (vsftpd CVE-2011-0762, pure-ftpd CVE-2011-0418): a pattern
//! is at most `MAX_PATTERN` bytes, compiled once per listing into a
//! bit-parallel automaton, so a name costs a few word operations per byte
//! whatever the pattern: no recursion, no backtracking, no regex.

/// The longest pattern accepted; a longer one is refused with 501.
pub const MAX_PATTERN: usize = 256;

/// Whether `component` holds a wildcard character.
pub fn has_wildcards(component: &[u8]) -> bool {
    component.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// States of a compiled pattern: one per element, plus the start.
const WORDS: usize = (MAX_PATTERN + 1).div_ceil(64);

/// A pattern compiled once per listing into a bit-parallel automaton: bit
/// `j` of the state set means "the first `j` elements have matched". Each
/// byte of a name costs a few word operations, whatever the pattern, so a
/// hostile pattern costs about what an `lstat` of the entry does.
pub struct Glob {
    /// For each byte value, the elements that take it (bit `j`: element `j`).
    takes: Vec<[u64; WORDS]>,
    /// States followed by a `*`: they stay whatever byte comes.
    stars: [u64; WORDS],
    /// The state after the last element: the name matched.
    last: usize,
    /// Words in use: short patterns need one.
    words: usize,
}

impl Glob {
    /// Compiles `pattern` (at most `MAX_PATTERN` bytes: longer ones are
    /// refused before this, and their tail is ignored here).
    pub fn new(pattern: &[u8]) -> Glob {
        let pattern = &pattern[..pattern.len().min(MAX_PATTERN)];
        let mut glob = Glob {
            takes: vec![[0; WORDS]; 256],
            stars: [0; WORDS],
            last: 0,
            words: 1,
        };
        let mut p = 0;
        while p < pattern.len() {
            if pattern[p] == b'*' {
                set(&mut glob.stars, glob.last);
                p += 1;
                continue;
            }
            let mut next = p + 1;
            for byte in 0..=255u8 {
                if let Some(end) = one(pattern, p, byte, &mut 0) {
                    set(&mut glob.takes[usize::from(byte)], glob.last);
                    next = end;
                }
            }
            // A class that takes no byte at all still ends where it ends.
            if pattern[p] == b'[' {
                next = class(pattern, p, 0, &mut 0).map_or(p + 1, |(_, end)| end);
            }
            glob.last += 1;
            p = next;
        }
        glob.words = (glob.last + 1).div_ceil(64);
        glob
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &[u8]) -> bool {
        self.matches_counting(name, &mut 0)
    }

    /// `matches`, adding to `steps` the words it works on: the cost a unit
    /// test bounds.
    fn matches_counting(&self, name: &[u8], steps: &mut u64) -> bool {
        let mut state = [0u64; WORDS];
        set(&mut state, 0);
        for &byte in name {
            let takes = &self.takes[usize::from(byte)];
            let mut carry = 0;
            let mut alive = 0;
            for w in 0..self.words {
                *steps += 1;
                let moved = state[w] & takes[w];
                let stay = state[w] & self.stars[w];
                state[w] = moved << 1 | carry | stay;
                carry = moved >> 63;
                alive |= state[w];
            }
            if alive == 0 {
                return false;
            }
        }
        state[self.last / 64] >> (self.last % 64) & 1 == 1
    }
}

fn set(bits: &mut [u64; WORDS], n: usize) {
    bits[n / 64] |= 1 << (n % 64);
}

/// Whether `name` matches `pattern` as a whole (compiles it each time).
pub fn matches(pattern: &[u8], name: &[u8]) -> bool {
    Glob::new(pattern).matches(name)
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

    /// The CVE-2011-0762 shape `*a*a*a...` and the worst case of a
    /// backtracking matcher, `*aaa...c`, against a long run of `a`s: each
    /// byte of the name costs at most the automaton's words, whatever the
    /// pattern (a backtracking matcher needs up to name x pattern steps).
    #[test]
    fn hostile_patterns_cost_a_few_words_per_byte() {
        let mut name = vec![b'a'; 199];
        name.push(b'b');
        let mut backtracker_worst = b"*".to_vec();
        backtracker_worst.extend_from_slice(&[b'a'; MAX_PATTERN - 2]);
        backtracker_worst.push(b'c');
        for pattern in [
            b"*a".repeat(MAX_PATTERN / 2),
            backtracker_worst,
            b"*[a-z]".repeat(MAX_PATTERN / 6),
            b"*[!a]x".repeat(MAX_PATTERN / 6),
        ] {
            let glob = Glob::new(&pattern);
            let mut steps = 0;
            glob.matches_counting(&name, &mut steps);
            let bound = (name.len() * WORDS) as u64;
            assert!(steps <= bound, "{steps} steps > {bound}");
        }
        assert!(matches(&b"*[a-z]".repeat(MAX_PATTERN / 6), &name));
        assert!(!matches(&b"*a".repeat(MAX_PATTERN / 2), &name));
    }
}
