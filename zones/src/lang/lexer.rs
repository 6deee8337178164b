//! The zonecfg lexer.
//!
//! - Words are runs of anything but blanks and `; = [ ] ( ) "`; inside `[...]` or `(...)` a
//!   comma separates items, outside it is an ordinary character (so `set limitpriv=default,sys_time`
//!   is one value, as in illumos).
//! - `"..."` quotes a value; `\"` and `\\` are the only escapes.
//! - `;` and newlines end a command; `#` at the start of a word comments out the rest of the line.

use super::ParseError;

/// A token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Word(String),
    Quoted(String),
    Equals,
    Comma,
    LBracket,
    RBracket,
    LParen,
    RParen,
    /// `;` or a newline.
    Sep,
}

impl Tok {
    /// How the token appears in messages.
    pub fn show(&self) -> String {
        match self {
            Tok::Word(w) => w.clone(),
            Tok::Quoted(q) => format!("\"{q}\""),
            Tok::Equals => "=".into(),
            Tok::Comma => ",".into(),
            Tok::LBracket => "[".into(),
            Tok::RBracket => "]".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Sep => ";".into(),
        }
    }
}

/// A token and the line (from 1) it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
}

fn is_delim(c: char, nested: bool) -> bool {
    c.is_whitespace()
        || matches!(c, ';' | '=' | '[' | ']' | '(' | ')' | '"')
        || (nested && c == ',')
}

/// Splits `input` into tokens.
pub fn lex(input: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    let mut line = 1;
    let mut depth = 0usize;
    while let Some(&c) = chars.peek() {
        let mut push = |tok| out.push(Token { tok, line });
        match c {
            '\n' | ';' => {
                chars.next();
                push(Tok::Sep);
                depth = 0;
                if c == '\n' {
                    line += 1;
                }
            }
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '=' | '[' | ']' | '(' | ')' => {
                chars.next();
                let tok = match c {
                    '=' => Tok::Equals,
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    '(' => Tok::LParen,
                    _ => Tok::RParen,
                };
                match tok {
                    Tok::LBracket | Tok::LParen => depth += 1,
                    Tok::RBracket | Tok::RParen => depth = depth.saturating_sub(1),
                    _ => {}
                }
                push(tok);
            }
            ',' if depth > 0 => {
                chars.next();
                push(Tok::Comma);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None | Some('\n') => {
                            return Err(ParseError {
                                line,
                                msg: format!("unterminated quoted string \"{s}"),
                            })
                        }
                        Some('"') => break,
                        Some('\\') if matches!(chars.peek(), Some('"' | '\\')) => {
                            s.push(chars.next().unwrap_or('\\'));
                        }
                        Some(ch) => s.push(ch),
                    }
                }
                push(Tok::Quoted(s));
            }
            _ => {
                let mut w = String::new();
                while let Some(&ch) = chars.peek() {
                    if is_delim(ch, depth > 0) {
                        break;
                    }
                    w.push(ch);
                    chars.next();
                }
                push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn w(s: &str) -> Tok {
        Tok::Word(s.into())
    }

    #[test]
    fn words_and_separators() {
        assert_eq!(
            toks("add net; set physical=vnic0\nend"),
            [
                w("add"),
                w("net"),
                Tok::Sep,
                w("set"),
                w("physical"),
                Tok::Equals,
                w("vnic0"),
                Tok::Sep,
                w("end")
            ]
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(
            toks(r#"set bootargs="-m verbose; x=1" "a\"b\\c""#),
            [
                w("set"),
                w("bootargs"),
                Tok::Equals,
                Tok::Quoted("-m verbose; x=1".into()),
                Tok::Quoted(r#"a"b\c"#.into())
            ]
        );
        assert_eq!(toks(r#""""#), [Tok::Quoted(String::new())]);
        let e = lex("set a=\"open\nend").unwrap_err();
        assert_eq!(
            (e.line, e.msg.as_str()),
            (1, "unterminated quoted string \"open")
        );
    }

    #[test]
    fn commas_only_separate_inside_lists() {
        assert_eq!(
            toks("set limitpriv=default,sys_time"),
            [w("set"), w("limitpriv"), Tok::Equals, w("default,sys_time")]
        );
        assert_eq!(
            toks("[ro,nodevices]"),
            [
                Tok::LBracket,
                w("ro"),
                Tok::Comma,
                w("nodevices"),
                Tok::RBracket
            ]
        );
        assert_eq!(
            toks("(priv=privileged,limit=5)"),
            [
                Tok::LParen,
                w("priv"),
                Tok::Equals,
                w("privileged"),
                Tok::Comma,
                w("limit"),
                Tok::Equals,
                w("5"),
                Tok::RParen
            ]
        );
    }

    #[test]
    fn comments_and_lines() {
        let t = lex("# header\ncreate # trailing\n\nset a=b#c").unwrap();
        let shown: Vec<(usize, String)> = t.iter().map(|t| (t.line, t.tok.show())).collect();
        assert_eq!(
            shown,
            [
                (1, ";".to_string()),
                (2, "create".into()),
                (2, ";".into()),
                (3, ";".into()),
                (4, "set".into()),
                (4, "a".into()),
                (4, "=".into()),
                (4, "b#c".into())
            ]
        );
    }
}
