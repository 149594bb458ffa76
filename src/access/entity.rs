//! Entities described as data: table, fields, which fields are sensitive, which record
//! rules apply. The query builder ([`super::query`]) and the write checks
//! ([`super::write`]) read these descriptions; no entity writes its own access logic.
//!
//! Identifiers in generated SQL come only from these `'static` descriptions, never from a
//! request.

/// How a field is stored and shown.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Free text up to `max` characters.
    Text {
        max: usize,
    },
    Email,
    /// A decimal string on the wire; INTEGER minor units of a currency in SQLite.
    Money(CurrencyOf),
    /// A decimal string on the wire; INTEGER scaled by 10^scale in SQLite.
    Decimal {
        scale: u32,
        min: Bound,
    },
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    /// An ISO 4217 code known to the platform.
    Currency,
    /// `YYYY-MM-DD`.
    Date,
    /// The id of a live row of another entity.
    Ref(&'static Entity),
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    /// A platform unit code (`unit`, `kg`, …).
    Uom,
    /// A platform tax category (`standard`, `reduced`, `zero`, `exempt`).
    TaxCategory,
}

/// The lower bound of a decimal field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Any,
    /// Zero or more.
    NonNegative,
    /// Strictly more than zero.
    Positive,
}

/// Which currency a money field is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurrencyOf {
    /// The currency named by another field of the same row.
    Field(&'static str),
    /// The tenant's base currency.
    Base,
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// JSON name and column name (they are the same by design).
    pub name: &'static str,
    pub kind: Kind,
    /// Must be given at create.
    pub required: bool,
    /// Readable/writable only with a field grant (`entity.field:read|write`).
    pub sensitive: bool,
    /// Unique among live (not deleted) rows.
    pub unique: bool,
    /// Usable in `?field=value` filters and `?sort=`.
    pub query: bool,
    /// Set at create, never changed.
    pub immutable: bool,
    /// Value when not given at create (SQL literal semantics handled by the writer).
    pub default: Option<&'static str>,
}

impl Field {
    pub const fn new(name: &'static str, kind: Kind) -> Self {
        Field {
            name,
            kind,
            required: false,
            sensitive: false,
            unique: false,
            query: false,
            immutable: false,
            default: None,
        }
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    pub const fn unique(mut self) -> Self {
        self.unique = true;
        self.query = true;
        self
    }
    pub const fn query(mut self) -> Self {
        self.query = true;
        self
    }
    pub const fn immutable(mut self) -> Self {
        self.immutable = true;
        self
    }
    pub const fn default(mut self, v: &'static str) -> Self {
        self.default = Some(v);
        self
    }
}

/// A record rule: when the tenant setting `setting` is on, principals the rule applies to
/// see only rows whose `column` holds their user id.
#[derive(Debug, Clone, Copy)]
pub struct OwnRowsRule {
    pub setting: &'static str,
    pub column: &'static str,
    /// Roles the rule restricts (a principal with any other role that can read the entity
    /// without restriction is not restricted).
    pub roles: &'static [&'static str],
}

#[derive(Debug)]
pub struct Entity {
    /// Collection name: URL segment, permission resource, audit `entity`.
    pub name: &'static str,
    pub table: &'static str,
    pub fields: &'static [Field],
    pub own_rows: Option<OwnRowsRule>,
    /// Refuses a delete the data model forbids (e.g. an account with postings → 409).
    pub guard_delete: Option<fn(&rusqlite::Connection, &str) -> crate::error::Result<()>>,
}

impl Entity {
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Columns every entity table has, managed by the data layer itself.
pub const SYSTEM_COLUMNS: &[&str] = &[
    "id",
    "version",
    "created_at",
    "updated_at",
    "deleted_at",
    "owner_id",
];
