//! [`Token`]: the caller's name for a registration, as in mio.

/// Associates readiness events with the source that produced them.
///
/// Chosen by the caller at registration (often an index into its own slab, or
/// a task id in the kernel); two sources may share a token.
///
/// ```
/// use percore_poll::Token;
///
/// const SERVER: Token = Token(0);
/// assert_eq!(usize::from(SERVER), 0);
/// assert_eq!(Token::from(7), Token(7));
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub usize);

impl From<Token> for usize {
    fn from(token: Token) -> usize {
        token.0
    }
}

impl From<usize> for Token {
    fn from(value: usize) -> Token {
        Token(value)
    }
}
