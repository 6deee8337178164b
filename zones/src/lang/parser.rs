//! The zonecfg parser: tokens into [`Command`]s.

use super::lexer::{lex, Tok, Token};
use super::ParseError;
use crate::model::Value;

/// Where `create` starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateSource {
    /// `create`: the default template.
    Default,
    /// `create -b`.
    Blank,
    /// `create -t TEMPLATE` (a built-in template or a configured zone).
    Template(String),
    /// `create -a PATH` (a detached zone).
    Detached(String),
}

/// A `prop=value` pair as `select`, `remove` and `info` take them.
pub type Filter = (String, Value);

/// One zonecfg command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `add RESOURCE` (global scope) or `add PROP VALUE` (resource scope).
    Add {
        target: String,
        value: Option<Value>,
    },
    Cancel,
    Clear {
        prop: String,
    },
    Commit,
    Create {
        force: bool,
        source: CreateSource,
    },
    Delete {
        force: bool,
    },
    End,
    Exit {
        force: bool,
    },
    Export {
        file: Option<String>,
    },
    Help {
        topic: Option<String>,
    },
    Info {
        target: Option<String>,
        filters: Vec<Filter>,
    },
    /// `remove [-F] RESOURCE [prop=value...]` or `remove PROP VALUE`.
    Remove {
        force: bool,
        target: String,
        filters: Vec<Filter>,
        value: Option<Value>,
    },
    Revert {
        force: bool,
    },
    Select {
        target: String,
        filters: Vec<Filter>,
    },
    Set {
        prop: String,
        value: Value,
    },
    Verify,
}

/// The command names, for `help` and error messages.
pub const COMMANDS: [&str; 16] = [
    "add", "cancel", "clear", "commit", "create", "delete", "end", "exit", "export", "help",
    "info", "remove", "revert", "select", "set", "verify",
];

/// A command and the line it started on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    pub line: usize,
    pub cmd: Command,
}

/// Parses a whole input (a line, a one-shot argument or a command file).
pub fn parse(input: &str) -> Result<Vec<Stmt>, ParseError> {
    let tokens = lex(input)?;
    let mut out = Vec::new();
    for chunk in tokens.split(|t| t.tok == Tok::Sep) {
        if let Some(first) = chunk.first() {
            let cmd = Parser {
                toks: chunk,
                pos: 0,
                line: first.line,
                cmd: String::new(),
            }
            .command()?;
            out.push(Stmt {
                line: first.line,
                cmd,
            });
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: &'a [Token],
    pos: usize,
    line: usize,
    cmd: String,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn peek2(&self) -> Option<&Tok> {
        self.toks.get(self.pos + 1).map(|t| &t.tok)
    }

    fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.tok.clone());
        self.pos += 1;
        t
    }

    fn error(&self, expected: &str) -> ParseError {
        let at = match self.toks.get(self.pos) {
            Some(t) => format!("'{}'", t.tok.show()),
            None => "end of command".to_string(),
        };
        ParseError {
            line: self.line,
            msg: format!("{}: syntax error at {at}: expected {expected}", self.cmd),
        }
    }

    fn done(&self) -> Result<(), ParseError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("nothing more")),
        }
    }

    /// A word or quoted string.
    fn text(&mut self, expected: &str) -> Result<String, ParseError> {
        match self.peek() {
            Some(Tok::Word(w) | Tok::Quoted(w)) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.error(expected)),
        }
    }

    /// A bare word naming something (resource, property); quotes are allowed too.
    fn name(&mut self, expected: &str) -> Result<String, ParseError> {
        self.text(expected)
    }

    /// Leading `-X` options; `with_arg` lists those that take an argument.
    fn options(
        &mut self,
        allowed: &str,
        with_arg: &str,
    ) -> Result<Vec<(char, Option<String>)>, ParseError> {
        let mut opts = Vec::new();
        while let Some(Tok::Word(w)) = self.peek() {
            let Some(flag) = w.strip_prefix('-') else {
                break;
            };
            let mut cs = flag.chars();
            let (Some(c), None) = (cs.next(), cs.next()) else {
                return Err(self.bad_option(w));
            };
            if !allowed.contains(c) {
                return Err(self.bad_option(w));
            }
            self.pos += 1;
            let arg = if with_arg.contains(c) {
                Some(self.text(&format!("an argument for -{c}"))?)
            } else {
                None
            };
            opts.push((c, arg));
        }
        Ok(opts)
    }

    fn bad_option(&self, w: &str) -> ParseError {
        ParseError {
            line: self.line,
            msg: format!("{}: unknown option '{w}'", self.cmd),
        }
    }

    fn force_only(&mut self) -> Result<bool, ParseError> {
        let force = !self.options("F", "")?.is_empty();
        self.done()?;
        Ok(force)
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        match self.peek() {
            Some(Tok::Word(_) | Tok::Quoted(_)) => Ok(Value::Simple(self.text("a value")?)),
            Some(Tok::LParen) => self.complex(),
            Some(Tok::LBracket) => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.peek() == Some(&Tok::RBracket) {
                    self.pos += 1;
                    return Ok(Value::List(items));
                }
                loop {
                    items.push(match self.peek() {
                        Some(Tok::LParen) => self.complex()?,
                        _ => Value::Simple(self.text("a list item")?),
                    });
                    match self.bump() {
                        Some(Tok::Comma) => continue,
                        Some(Tok::RBracket) => return Ok(Value::List(items)),
                        _ => {
                            self.pos -= 1;
                            return Err(self.error("',' or ']'"));
                        }
                    }
                }
            }
            _ => Err(self.error("a value")),
        }
    }

    fn complex(&mut self) -> Result<Value, ParseError> {
        self.pos += 1; // (
        let mut pairs = Vec::new();
        loop {
            let k = self.text("name=value")?;
            if self.bump() != Some(Tok::Equals) {
                self.pos -= 1;
                return Err(self.error("'=' after the name"));
            }
            let v = self.text("a value")?;
            pairs.push((k, v));
            match self.bump() {
                Some(Tok::Comma) => continue,
                Some(Tok::RParen) => return Ok(Value::Complex(pairs)),
                _ => {
                    self.pos -= 1;
                    return Err(self.error("',' or ')'"));
                }
            }
        }
    }

    /// `prop=value prop=value ...` to the end of the command.
    fn filters(&mut self) -> Result<Vec<Filter>, ParseError> {
        let mut out = Vec::new();
        while self.peek().is_some() {
            let prop = self.name("prop=value")?;
            if self.bump() != Some(Tok::Equals) {
                self.pos -= 1;
                return Err(self.error("'=' after the property name"));
            }
            out.push((prop, self.value()?));
        }
        Ok(out)
    }

    fn command(mut self) -> Result<Command, ParseError> {
        let name = match self.bump() {
            Some(Tok::Word(w)) => w,
            Some(t) => {
                return Err(ParseError {
                    line: self.line,
                    msg: format!("syntax error at '{}': expected a command", t.show()),
                })
            }
            None => unreachable!("parse() never passes an empty command"),
        };
        self.cmd = name.clone();
        let cmd = match name.as_str() {
            "add" => {
                let target = self.name("a resource type or a property name")?;
                let value = match self.peek() {
                    None => None,
                    Some(_) => Some(self.value()?),
                };
                self.done()?;
                Command::Add { target, value }
            }
            "cancel" => self.bare(Command::Cancel)?,
            "clear" => {
                let prop = self.name("a property name")?;
                self.done()?;
                Command::Clear { prop }
            }
            "commit" => self.bare(Command::Commit)?,
            "create" => self.create()?,
            "delete" => Command::Delete {
                force: self.force_only()?,
            },
            "end" => self.bare(Command::End)?,
            "exit" | "quit" => Command::Exit {
                force: self.force_only()?,
            },
            "export" => {
                let opts = self.options("f", "f")?;
                self.done()?;
                Command::Export {
                    file: opts.into_iter().find_map(|(_, a)| a),
                }
            }
            "help" | "?" => {
                let mut words = Vec::new();
                while self.peek().is_some() {
                    words.push(self.text("a help topic")?);
                }
                Command::Help {
                    topic: (!words.is_empty()).then(|| words.join(" ")),
                }
            }
            "info" => {
                let target = match self.peek() {
                    None => None,
                    Some(_) => Some(self.name("a resource type or a property name")?),
                };
                Command::Info {
                    target,
                    filters: self.filters()?,
                }
            }
            "remove" => self.remove()?,
            "revert" => Command::Revert {
                force: self.force_only()?,
            },
            "select" => {
                let target = self.name("a resource type")?;
                Command::Select {
                    target,
                    filters: self.filters()?,
                }
            }
            "set" => self.set()?,
            "verify" => self.bare(Command::Verify)?,
            other => {
                return Err(ParseError {
                    line: self.line,
                    msg: format!("'{other}' is not a valid command; type 'help' for the list"),
                })
            }
        };
        Ok(cmd)
    }

    fn bare(&mut self, cmd: Command) -> Result<Command, ParseError> {
        self.done()?;
        Ok(cmd)
    }

    fn create(&mut self) -> Result<Command, ParseError> {
        let mut force = false;
        let mut source = CreateSource::Default;
        for (c, arg) in self.options("Fbta", "ta")? {
            let arg = arg.unwrap_or_default();
            let next = match c {
                'F' => {
                    force = true;
                    continue;
                }
                'b' => CreateSource::Blank,
                't' => CreateSource::Template(arg),
                _ => CreateSource::Detached(arg),
            };
            if source != CreateSource::Default {
                return Err(ParseError {
                    line: self.line,
                    msg: "create: -a, -b and -t exclude each other".into(),
                });
            }
            source = next;
        }
        self.done()?;
        Ok(Command::Create { force, source })
    }

    fn remove(&mut self) -> Result<Command, ParseError> {
        let force = !self.options("F", "")?.is_empty();
        let target = self.name("a resource type or a property name")?;
        let (filters, value) = match (self.peek(), self.peek2()) {
            (None, _) => (Vec::new(), None),
            (Some(Tok::Word(_) | Tok::Quoted(_)), Some(Tok::Equals)) => (self.filters()?, None),
            _ => {
                let v = self.value()?;
                self.done()?;
                (Vec::new(), Some(v))
            }
        };
        Ok(Command::Remove {
            force,
            target,
            filters,
            value,
        })
    }

    fn set(&mut self) -> Result<Command, ParseError> {
        let prop = self.name("prop=value")?;
        if self.bump() != Some(Tok::Equals) {
            self.pos -= 1;
            return Err(self.error("'=' after the property name"));
        }
        if self.peek().is_none() {
            return Err(ParseError {
                line: self.line,
                msg: format!("set: no value for {prop}; use 'clear {prop}' to clear it"),
            });
        }
        let value = self.value()?;
        self.done()?;
        Ok(Command::Set { prop, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Command {
        let mut v = parse(s).unwrap();
        assert_eq!(v.len(), 1, "{s}");
        v.remove(0).cmd
    }

    fn err(s: &str) -> String {
        parse(s).unwrap_err().msg
    }

    fn sv(s: &str) -> Value {
        Value::simple(s)
    }

    #[test]
    fn every_command() {
        assert_eq!(
            one("add fs"),
            Command::Add {
                target: "fs".into(),
                value: None
            }
        );
        assert_eq!(
            one("add options [ro,nodevices]"),
            Command::Add {
                target: "options".into(),
                value: Some(Value::List(vec![sv("ro"), sv("nodevices")]))
            }
        );
        assert_eq!(one("cancel"), Command::Cancel);
        assert_eq!(
            one("clear bootargs"),
            Command::Clear {
                prop: "bootargs".into()
            }
        );
        assert_eq!(one("commit"), Command::Commit);
        assert_eq!(
            one("create"),
            Command::Create {
                force: false,
                source: CreateSource::Default
            }
        );
        assert_eq!(
            one("create -b"),
            Command::Create {
                force: false,
                source: CreateSource::Blank
            }
        );
        assert_eq!(
            one("create -F -t web"),
            Command::Create {
                force: true,
                source: CreateSource::Template("web".into())
            }
        );
        assert_eq!(
            one("create -a /zones/old"),
            Command::Create {
                force: false,
                source: CreateSource::Detached("/zones/old".into())
            }
        );
        assert_eq!(one("delete -F"), Command::Delete { force: true });
        assert_eq!(one("end"), Command::End);
        assert_eq!(one("exit"), Command::Exit { force: false });
        assert_eq!(one("exit -F"), Command::Exit { force: true });
        assert_eq!(one("export"), Command::Export { file: None });
        assert_eq!(
            one("export -f /tmp/x"),
            Command::Export {
                file: Some("/tmp/x".into())
            }
        );
        assert_eq!(one("help"), Command::Help { topic: None });
        assert_eq!(
            one("help add"),
            Command::Help {
                topic: Some("add".into())
            }
        );
        assert_eq!(
            one("info"),
            Command::Info {
                target: None,
                filters: vec![]
            }
        );
        assert_eq!(
            one("info fs dir=/data"),
            Command::Info {
                target: Some("fs".into()),
                filters: vec![("dir".into(), sv("/data"))]
            }
        );
        assert_eq!(
            one("remove -F fs"),
            Command::Remove {
                force: true,
                target: "fs".into(),
                filters: vec![],
                value: None
            }
        );
        assert_eq!(
            one("remove fs dir=/data"),
            Command::Remove {
                force: false,
                target: "fs".into(),
                filters: vec![("dir".into(), sv("/data"))],
                value: None
            }
        );
        assert_eq!(
            one("remove options ro"),
            Command::Remove {
                force: false,
                target: "options".into(),
                filters: vec![],
                value: Some(sv("ro"))
            }
        );
        assert_eq!(one("revert -F"), Command::Revert { force: true });
        assert_eq!(
            one("select net physical=vnic0"),
            Command::Select {
                target: "net".into(),
                filters: vec![("physical".into(), sv("vnic0"))]
            }
        );
        assert_eq!(
            one("set zonepath=/zones/a"),
            Command::Set {
                prop: "zonepath".into(),
                value: sv("/zones/a")
            }
        );
        assert_eq!(
            one("set zonepath = /zones/a"),
            Command::Set {
                prop: "zonepath".into(),
                value: sv("/zones/a")
            }
        );
        assert_eq!(one("verify"), Command::Verify);
    }

    #[test]
    fn complex_values_and_lists_of_them() {
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            one("add value (priv=privileged,limit=300,action=deny)"),
            Command::Add {
                target: "value".into(),
                value: Some(Value::Complex(vec![
                    pair("priv", "privileged"),
                    pair("limit", "300"),
                    pair("action", "deny")
                ]))
            }
        );
        assert_eq!(
            one("set value=[(a=1),(b=2)]"),
            Command::Set {
                prop: "value".into(),
                value: Value::List(vec![
                    Value::Complex(vec![pair("a", "1")]),
                    Value::Complex(vec![pair("b", "2")])
                ])
            }
        );
        assert_eq!(
            one("set options=[]"),
            Command::Set {
                prop: "options".into(),
                value: Value::List(vec![])
            }
        );
    }

    #[test]
    fn separators_and_lines() {
        let stmts = parse("create; set zonepath=/z\n\n# c\nadd fs;set dir=/d;end").unwrap();
        let lines: Vec<usize> = stmts.iter().map(|s| s.line).collect();
        assert_eq!(lines, [1, 1, 4, 4, 4]);
        assert!(parse("").unwrap().is_empty());
        assert!(parse(";;\n#only a comment\n").unwrap().is_empty());
    }

    #[test]
    fn quoted_values_keep_specials() {
        assert_eq!(
            one(r#"set bootargs="-s; init=/bin/sh""#),
            Command::Set {
                prop: "bootargs".into(),
                value: sv("-s; init=/bin/sh")
            }
        );
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            err("frob"),
            "'frob' is not a valid command; type 'help' for the list"
        );
        assert_eq!(
            err("set zonepath"),
            "set: syntax error at end of command: expected '=' after the property name"
        );
        assert_eq!(
            err("set zonepath="),
            "set: no value for zonepath; use 'clear zonepath' to clear it"
        );
        assert_eq!(
            err("set a=b c"),
            "set: syntax error at 'c': expected nothing more"
        );
        assert_eq!(
            err("add options [ro,"),
            "add: syntax error at end of command: expected a list item"
        );
        assert_eq!(
            err("add options [ro nodev]"),
            "add: syntax error at 'nodev': expected ',' or ']'"
        );
        assert_eq!(
            err("add value (priv)"),
            "add: syntax error at ')': expected '=' after the name"
        );
        assert_eq!(
            err("add value (a=1"),
            "add: syntax error at end of command: expected ',' or ')'"
        );
        assert_eq!(err("create -x"), "create: unknown option '-x'");
        assert_eq!(
            err("create -b -t x"),
            "create: -a, -b and -t exclude each other"
        );
        assert_eq!(
            err("create -t"),
            "create: syntax error at end of command: expected an argument for -t"
        );
        assert_eq!(err("= x"), "syntax error at '=': expected a command");
        assert_eq!(
            err("end now"),
            "end: syntax error at 'now': expected nothing more"
        );
        assert_eq!(
            err("select fs dir"),
            "select: syntax error at end of command: expected '=' after the property name"
        );
        assert_eq!(parse("create\nset a=\"x").unwrap_err().line, 2);
    }
}
