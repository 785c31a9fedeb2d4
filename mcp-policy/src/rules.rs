//! MCP authorization expressions: the subset of CEL (the Common Expression Language that
//! agentgateway's `matchExpressions` are written in) that fleetgate evaluates, parsed once
//! ([`compile`]) and evaluated per tool, prompt or resource ([`Expr::matches`]).
//!
//! The subset:
//! - variables `mcp` (`mcp.tool.name`, `mcp.tool.target`, `mcp.prompt.*`, `mcp.resource.*`)
//!   and `jwt` (the verified token's claims: `jwt.sub`, `jwt["https://x/groups"]`);
//! - literals: strings (`"…"` or `'…'`), integers, `true`, `false`, `null`, lists `[…]`;
//! - `==`, `!=`, `<`, `<=`, `>`, `>=`, `in` (a list's elements or a map's keys), `!`, `&&`,
//!   `||`, parentheses;
//! - `has(x.y)`, and on strings `startsWith`, `endsWith`, `contains`.
//!
//! Anything else (macros, arithmetic, the ternary, other functions) is refused at compile
//! time, naming the construct. As in CEL, a field that is missing or a comparison of the
//! wrong types is an error, `&&`/`||` absorb an error when the other side decides, and a
//! rule whose value is an error or not `true` does not match. Pure.

use serde_json::Value;

/// The longest expression accepted (agentgateway's limit for one CEL expression).
pub const MAX_LEN: usize = 16_384;
/// The deepest nesting accepted (parentheses, lists, `!`), so that no input exhausts the stack.
pub const MAX_DEPTH: usize = 32;
/// The variables an expression may read.
pub const VARIABLES: [&str; 2] = ["mcp", "jwt"];

/// Why an expression does not compile; `at` is the byte offset in the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {at})")]
pub struct RuleError {
    pub at: usize,
    pub message: String,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A string method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrMethod {
    StartsWith,
    EndsWith,
    Contains,
}

/// A compiled expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Lit(Value),
    List(Vec<Expr>),
    Var(String),
    Select(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Has(Box<Expr>, String),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(Cmp, Box<Expr>, Box<Expr>),
    In(Box<Expr>, Box<Expr>),
    Method(StrMethod, Box<Expr>, Box<Expr>),
}

/// An evaluation error (CEL's "no such key", "no matching overload").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalError;

type Eval = Result<Value, EvalError>;

impl Expr {
    /// Whether the expression is `true` for `vars` (an object with `mcp` and, when the caller
    /// presented a verified token, `jwt`).
    pub fn matches(&self, vars: &Value) -> bool {
        matches!(self.eval(vars), Ok(Value::Bool(true)))
    }

    fn eval(&self, vars: &Value) -> Eval {
        match self {
            Self::Lit(v) => Ok(v.clone()),
            Self::List(items) => items
                .iter()
                .map(|e| e.eval(vars))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Self::Var(name) => vars.get(name).cloned().ok_or(EvalError),
            Self::Select(e, field) => match e.eval(vars)? {
                Value::Object(mut m) => m.remove(field).ok_or(EvalError),
                _ => Err(EvalError),
            },
            Self::Index(e, key) => match (e.eval(vars)?, key.eval(vars)?) {
                (Value::Object(mut m), Value::String(k)) => m.remove(&k).ok_or(EvalError),
                (Value::Array(a), Value::Number(n)) => n
                    .as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| a.get(i).cloned())
                    .ok_or(EvalError),
                _ => Err(EvalError),
            },
            Self::Has(e, field) => match e.eval(vars)? {
                Value::Object(m) => Ok(Value::Bool(m.contains_key(field))),
                _ => Err(EvalError),
            },
            Self::Not(e) => match e.eval(vars)? {
                Value::Bool(b) => Ok(Value::Bool(!b)),
                _ => Err(EvalError),
            },
            Self::And(a, b) => match (a.eval(vars), b.eval(vars)) {
                (Ok(Value::Bool(false)), _) | (_, Ok(Value::Bool(false))) => Ok(Value::Bool(false)),
                (Ok(Value::Bool(true)), Ok(Value::Bool(true))) => Ok(Value::Bool(true)),
                _ => Err(EvalError),
            },
            Self::Or(a, b) => match (a.eval(vars), b.eval(vars)) {
                (Ok(Value::Bool(true)), _) | (_, Ok(Value::Bool(true))) => Ok(Value::Bool(true)),
                (Ok(Value::Bool(false)), Ok(Value::Bool(false))) => Ok(Value::Bool(false)),
                _ => Err(EvalError),
            },
            Self::Cmp(op, a, b) => compare(*op, &a.eval(vars)?, &b.eval(vars)?).map(Value::Bool),
            Self::In(x, c) => {
                let x = x.eval(vars)?;
                match c.eval(vars)? {
                    Value::Array(a) => Ok(Value::Bool(a.iter().any(|e| equal(e, &x)))),
                    Value::Object(m) => match x {
                        Value::String(k) => Ok(Value::Bool(m.contains_key(&k))),
                        _ => Err(EvalError),
                    },
                    _ => Err(EvalError),
                }
            }
            Self::Method(m, recv, arg) => match (recv.eval(vars)?, arg.eval(vars)?) {
                (Value::String(s), Value::String(a)) => Ok(Value::Bool(match m {
                    StrMethod::StartsWith => s.starts_with(&a),
                    StrMethod::EndsWith => s.ends_with(&a),
                    StrMethod::Contains => s.contains(&a),
                })),
                _ => Err(EvalError),
            },
        }
    }
}

/// CEL's heterogeneous equality: numbers by value, other types structurally, different
/// types unequal.
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        _ => a == b,
    }
}

fn compare(op: Cmp, a: &Value, b: &Value) -> Result<bool, EvalError> {
    use std::cmp::Ordering;
    let order = || -> Result<Ordering, EvalError> {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x
                .as_f64()
                .zip(y.as_f64())
                .and_then(|(x, y)| x.partial_cmp(&y))
                .ok_or(EvalError),
            (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
            _ => Err(EvalError),
        }
    };
    Ok(match op {
        Cmp::Eq => equal(a, b),
        Cmp::Ne => !equal(a, b),
        Cmp::Lt => order()? == Ordering::Less,
        Cmp::Le => order()? != Ordering::Greater,
        Cmp::Gt => order()? == Ordering::Greater,
        Cmp::Ge => order()? != Ordering::Less,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Punct(&'static str),
}

const PUNCT: [&str; 18] = [
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", "[", "]", ",", ".", "?", ":", "+",
];

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, RuleError> {
    let err = |at: usize, m: &str| RuleError {
        at,
        message: m.to_string(),
    };
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((s, Tok::Ident(src[s..i].to_string())));
        } else if c.is_ascii_digit() {
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'.' || b[i] == b'e' || b[i] == b'x' || b[i] == b'u') {
                return Err(err(s, "only decimal integers are supported as numbers"));
            }
            let n = src[s..i]
                .parse::<i64>()
                .map_err(|_| err(s, "integer out of range"))?;
            out.push((s, Tok::Int(n)));
        } else if c == b'"' || c == b'\'' {
            let s = i;
            i += 1;
            let mut text = String::new();
            loop {
                let Some(ch) = src[i..].chars().next() else {
                    return Err(err(s, "unterminated string"));
                };
                i += ch.len_utf8();
                match ch {
                    '\\' => {
                        let Some(e) = src[i..].chars().next() else {
                            return Err(err(s, "unterminated string"));
                        };
                        i += e.len_utf8();
                        text.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '\\' | '"' | '\'' => e,
                            _ => return Err(err(i - 2, "unsupported escape in string")),
                        });
                    }
                    '\n' => return Err(err(s, "unterminated string")),
                    q if q as u32 == u32::from(c) => break,
                    other => text.push(other),
                }
            }
            out.push((s, Tok::Str(text)));
        } else if let Some(p) = PUNCT.iter().find(|p| src[i..].starts_with(**p)) {
            out.push((i, Tok::Punct(p)));
            i += p.len();
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return Err(err(i, &format!("unexpected character {ch:?}")));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
    depth: usize,
}

impl Parser {
    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |t| t.0)
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.1)
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, RuleError> {
        Err(RuleError {
            at: self.at(),
            message: message.into(),
        })
    }

    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Punct(x)) if *x == p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> Result<(), RuleError> {
        if self.eat(p) {
            Ok(())
        } else {
            self.err(format!("expected {p:?}"))
        }
    }

    fn deeper(&mut self) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(format!("nested deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, RuleError> {
        let mut e = self.and()?;
        while self.eat("||") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, RuleError> {
        let mut e = self.relation()?;
        while self.eat("&&") {
            e = Expr::And(Box::new(e), Box::new(self.relation()?));
        }
        Ok(e)
    }

    fn relation(&mut self) -> Result<Expr, RuleError> {
        let left = self.unary()?;
        let ops = [
            ("==", Cmp::Eq),
            ("!=", Cmp::Ne),
            ("<=", Cmp::Le),
            (">=", Cmp::Ge),
            ("<", Cmp::Lt),
            (">", Cmp::Gt),
        ];
        for (p, op) in ops {
            if self.eat(p) {
                let right = self.unary()?;
                return Ok(Expr::Cmp(op, Box::new(left), Box::new(right)));
            }
        }
        if self.peek() == Some(&Tok::Ident("in".into())) {
            self.pos += 1;
            let right = self.unary()?;
            return Ok(Expr::In(Box::new(left), Box::new(right)));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, RuleError> {
        if self.eat("!") {
            self.deeper()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.member()
    }

    fn member(&mut self) -> Result<Expr, RuleError> {
        let mut e = self.primary()?;
        loop {
            if self.eat(".") {
                let Some(Tok::Ident(name)) = self.peek().cloned() else {
                    return self.err("expected a field name after '.'");
                };
                self.pos += 1;
                if self.eat("(") {
                    let m = match name.as_str() {
                        "startsWith" => StrMethod::StartsWith,
                        "endsWith" => StrMethod::EndsWith,
                        "contains" => StrMethod::Contains,
                        _ => {
                            return self.err(format!(
                                "method {name}() is not supported (startsWith, endsWith and contains are)"
                            ));
                        }
                    };
                    self.deeper()?;
                    let arg = self.or()?;
                    self.depth -= 1;
                    self.expect(")")?;
                    e = Expr::Method(m, Box::new(e), Box::new(arg));
                } else {
                    e = Expr::Select(Box::new(e), name);
                }
            } else if self.eat("[") {
                self.deeper()?;
                let key = self.or()?;
                self.depth -= 1;
                self.expect("]")?;
                e = Expr::Index(Box::new(e), Box::new(key));
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, RuleError> {
        let at = self.at();
        let Some(tok) = self.peek().cloned() else {
            return self.err("expected a value, found the end");
        };
        self.pos += 1;
        match tok {
            Tok::Str(s) => Ok(Expr::Lit(Value::String(s))),
            Tok::Int(n) => Ok(Expr::Lit(Value::from(n))),
            Tok::Ident(id) => match id.as_str() {
                "true" => Ok(Expr::Lit(Value::Bool(true))),
                "false" => Ok(Expr::Lit(Value::Bool(false))),
                "null" => Ok(Expr::Lit(Value::Null)),
                "has" if self.eat("(") => {
                    self.deeper()?;
                    let arg = self.member()?;
                    self.depth -= 1;
                    self.expect(")")?;
                    match arg {
                        Expr::Select(e, field) => Ok(Expr::Has(e, field)),
                        _ => self.err("has() takes a field selection such as has(jwt.sub)"),
                    }
                }
                _ if self.peek() == Some(&Tok::Punct("(")) => Err(RuleError {
                    at,
                    message: format!(
                        "function {id}() is not supported (has() and the string methods startsWith, endsWith, contains are)"
                    ),
                }),
                _ if VARIABLES.contains(&id.as_str()) => Ok(Expr::Var(id)),
                _ => Err(RuleError {
                    at,
                    message: format!(
                        "unknown variable {id}; the variables are {}",
                        VARIABLES.join(" and ")
                    ),
                }),
            },
            Tok::Punct("(") => {
                self.deeper()?;
                let e = self.or()?;
                self.depth -= 1;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Punct("[") => {
                self.deeper()?;
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.or()?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                self.depth -= 1;
                Ok(Expr::List(items))
            }
            Tok::Punct(p) => Err(RuleError {
                at,
                message: format!("{p:?} is not supported here"),
            }),
        }
    }
}

/// Parses one expression.
pub fn compile(src: &str) -> Result<Expr, RuleError> {
    if src.len() > MAX_LEN {
        return Err(RuleError {
            at: MAX_LEN,
            message: format!("longer than {MAX_LEN} bytes"),
        });
    }
    if src.trim().is_empty() {
        return Err(RuleError {
            at: 0,
            message: "empty expression".into(),
        });
    }
    let mut p = Parser {
        toks: lex(src)?,
        pos: 0,
        end: src.len(),
        depth: 0,
    };
    let e = p.or()?;
    if p.pos < p.toks.len() {
        return p.err("unexpected text after the expression (only ==, !=, <, <=, >, >=, in, !, &&, || are supported)");
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Value {
        json!({
            "mcp": {"tool": {"name": "add", "target": "alpha"}},
            "jwt": {"sub": "alice", "groups": ["dev", "ops"], "level": 3,
                    "https://example.com/team": "blue", "nested": {"ok": true}}
        })
    }

    #[test]
    fn expressions_evaluate_as_cel_does() {
        let cases: &[(&str, bool)] = &[
            (r#"mcp.tool.name == "add""#, true),
            (r#"mcp.tool.name == 'sub'"#, false),
            (r#"mcp.tool.name != "sub""#, true),
            (r#"mcp.tool.target == "alpha" && jwt.sub == "alice""#, true),
            (r#"mcp.tool.target == "beta" || jwt.sub == "alice""#, true),
            (r#"!(jwt.sub == "alice")"#, false),
            (r#""ops" in jwt.groups"#, true),
            (r#""admin" in jwt.groups"#, false),
            (r#"mcp.tool.name in ["add", "sub"]"#, true),
            (r#"jwt["https://example.com/team"] == "blue""#, true),
            (r#"jwt.groups[1] == "ops""#, true),
            (r#"jwt.level >= 3 && jwt.level < 4"#, true),
            (r#"jwt.level > 3"#, false),
            (r#"mcp.tool.name.startsWith("ad")"#, true),
            (r#"mcp.tool.name.endsWith("dd")"#, true),
            (r#"mcp.tool.name.contains("x")"#, false),
            (r#"has(jwt.sub)"#, true),
            (r#"has(jwt.email)"#, false),
            (r#"jwt.nested.ok"#, true),
            (r#""team" in jwt.nested"#, false),
            ("true", true),
            // Errors do not match, unless the other side of && / || decides.
            (r#"jwt.email == "x""#, false),
            (r#"!(jwt.email == "x")"#, false),
            (r#"mcp.prompt.name == "p""#, false),
            (r#"jwt.email == "x" || mcp.tool.name == "add""#, true),
            (r#"jwt.email == "x" && mcp.tool.name == "sub""#, false),
            (r#"jwt.level < "a""#, false),
            (r#"jwt.sub"#, false),
            (r#"jwt.level == 3"#, true),
        ];
        let v = vars();
        for (src, want) in cases {
            let e = compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(e.matches(&v), *want, "{src}");
        }
    }

    #[test]
    fn without_a_token_rules_on_claims_do_not_match() {
        let e = compile(r#"jwt.sub == "alice""#).unwrap();
        assert!(!e.matches(&json!({"mcp": {"tool": {"name": "add", "target": "a"}}})));
        let e = compile(r#"!has(jwt.sub)"#).unwrap();
        assert!(!e.matches(&json!({"mcp": {}})), "jwt itself is missing");
    }

    #[test]
    fn what_is_not_supported_is_refused_naming_it() {
        let cases = [
            ("", "empty expression"),
            ("mcp.tool.name ==", "expected a value"),
            ("request.headers['x'] == 'y'", "unknown variable request"),
            ("size(jwt.groups) > 1", "function size() is not supported"),
            (
                "jwt.groups.exists(g, g == 'a')",
                "method exists() is not supported",
            ),
            ("jwt.level + 1 == 2", "unexpected text after the expression"),
            ("+1 == 1", "\"+\" is not supported here"),
            (
                "jwt.a ? true : false",
                "unexpected text after the expression",
            ),
            ("jwt.level == 1.5", "only decimal integers"),
            ("jwt.sub == \"abc", "unterminated string"),
            ("jwt.sub == `x`", "unexpected character '`'"),
            ("has(jwt)", "has() takes a field selection"),
            ("mcp.tool.name == 'a' 'b'", "unexpected text"),
        ];
        for (src, want) in cases {
            let err = compile(src).unwrap_err().to_string();
            assert!(err.contains(want), "{src}: {err}");
        }
        let deep = format!("{}true{}", "(".repeat(40), ")".repeat(40));
        assert!(
            compile(&deep)
                .unwrap_err()
                .to_string()
                .contains("nested deeper")
        );
        let nots = format!("{}true", "!".repeat(100));
        assert!(compile(&nots).is_err());
        assert!(compile(&"a".repeat(MAX_LEN + 1)).is_err());
    }
}
