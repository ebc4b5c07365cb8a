//! Object metadata: what an sObject is (name, key prefix, table) and what its fields are (type,
//! column, rules). Standard objects are code (built here); custom objects are rows of
//! `data_objects`/`data_fields` turned into the same types by [`crate::registry`].
//!
//! Every SQL identifier the data layer ever emits comes from these values, never from a request:
//! standard names are constants, custom names are validated once by [`ApiName::parse_custom`]
//! when an admin defines them and stored with the table/column name derived from them.

use std::fmt;

/// A field's Salesforce type, as `describe` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Id,
    Reference,
    String,
    TextArea,
    Email,
    Phone,
    Url,
    Picklist,
    Int,
    Double,
    Currency,
    Percent,
    Boolean,
    Date,
    DateTime,
}

/// How a value is held in SQL, which decides binding, comparison and decoding.
///
/// Chosen so both backends behave identically through sqlx's `Any` driver, which maps only
/// BIGINT, DOUBLE/REAL and TEXT the same way on both sides:
/// - text is TEXT (`COLLATE "C"` on PostgreSQL, SQLite's default BINARY): byte order and ASCII-only
///   `LOWER`, the same on both; SOQL's case-insensitive `=`/`LIKE`/`ORDER BY` use `LOWER(col)`;
/// - IDs are TEXT in their 18-character form, compared exactly (IDs are case-sensitive);
/// - booleans are BIGINT 0/1 (as in the rest of Valet);
/// - dates are TEXT `YYYY-MM-DD` (sorts and compares correctly as text, no time zone involved);
/// - datetimes are BIGINT epoch milliseconds (as every time in Valet);
/// - numbers are DOUBLE PRECISION / REAL, integers BIGINT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Id,
    Text,
    Int,
    Real,
    Bool,
    Date,
    DateTime,
}

impl FieldType {
    pub fn storage(self) -> Storage {
        match self {
            FieldType::Id | FieldType::Reference => Storage::Id,
            FieldType::String
            | FieldType::TextArea
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Url
            | FieldType::Picklist => Storage::Text,
            FieldType::Int => Storage::Int,
            FieldType::Double | FieldType::Currency | FieldType::Percent => Storage::Real,
            FieldType::Boolean => Storage::Bool,
            FieldType::Date => Storage::Date,
            FieldType::DateTime => Storage::DateTime,
        }
    }

    /// The `type` of a field describe.
    pub fn describe_name(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::Reference => "reference",
            FieldType::String => "string",
            FieldType::TextArea => "textarea",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Picklist => "picklist",
            FieldType::Int => "int",
            FieldType::Double => "double",
            FieldType::Currency => "currency",
            FieldType::Percent => "percent",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
        }
    }

    pub fn soap_type(self) -> &'static str {
        match self.storage() {
            Storage::Id => "tns:ID",
            Storage::Text => "xsd:string",
            Storage::Int => "xsd:int",
            Storage::Real => "xsd:double",
            Storage::Bool => "xsd:boolean",
            Storage::Date => "xsd:date",
            Storage::DateTime => "xsd:dateTime",
        }
    }

    /// The word SOQL errors use ("must be of type date").
    pub fn soql_type_word(self) -> &'static str {
        match self.storage() {
            Storage::Id => "id",
            Storage::Text => "string",
            Storage::Int => "integer",
            Storage::Real => "double",
            Storage::Bool => "boolean",
            Storage::Date => "date",
            Storage::DateTime => "datetime",
        }
    }

    /// The types `valet object add-field --type` accepts (the list).
    pub fn parse_custom(s: &str) -> Option<FieldType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "text" | "string" => FieldType::String,
            "textarea" => FieldType::TextArea,
            "number" | "double" => FieldType::Double,
            "int" | "integer" => FieldType::Int,
            "currency" => FieldType::Currency,
            "percent" => FieldType::Percent,
            "checkbox" | "boolean" => FieldType::Boolean,
            "date" => FieldType::Date,
            "datetime" => FieldType::DateTime,
            "email" => FieldType::Email,
            "phone" => FieldType::Phone,
            "url" => FieldType::Url,
            "picklist" => FieldType::Picklist,
            "lookup" | "reference" => FieldType::Reference,
            _ => return None,
        })
    }

    /// The name the registry stores (the inverse of [`FieldType::parse_custom`]).
    pub fn stored_name(self) -> &'static str {
        match self {
            FieldType::String => "text",
            FieldType::Double => "number",
            FieldType::Boolean => "checkbox",
            FieldType::Reference => "lookup",
            other => other.describe_name(),
        }
    }
}

/// Where a field's value lives in SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// A real column (a registry-derived, validated lower-case identifier).
    Col(String),
    /// A read-only expression over the object's row (virtual objects such as User); `{t}` is the
    /// table alias.
    Expr(&'static str),
}

/// A default applied on create when the field is absent.
#[derive(Debug, Clone, PartialEq)]
pub enum DefaultValue {
    Bool(bool),
    Text(String),
}

/// Who fills a system field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auto {
    /// Set by the caller (subject to createable/updateable).
    No,
    /// `Name` of Contact and Lead: FirstName + LastName.
    FullName,
    /// Case's auto-number.
    CaseNumber,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    pub name: String,
    pub label: String,
    pub ftype: FieldType,
    pub column: Column,
    /// Characters, for text types.
    pub length: u32,
    /// Total digits and digits after the point, for numbers.
    pub precision: u32,
    pub scale: u32,
    /// `nillable: false` and, when createable, REQUIRED_FIELD_MISSING on create.
    pub required: bool,
    pub createable: bool,
    pub updateable: bool,
    pub custom: bool,
    /// Target object of a reference.
    pub reference_to: Option<String>,
    /// `Account` for `AccountId`, `Owner__r` for `Owner__c`.
    pub relationship_name: Option<String>,
    pub picklist: Vec<String>,
    pub restricted_picklist: bool,
    pub default: Option<DefaultValue>,
    pub name_field: bool,
    pub auto: Auto,
}

impl FieldDef {
    pub fn storage(&self) -> Storage {
        self.ftype.storage()
    }

    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    pub fn column_name(&self) -> Option<&str> {
        match &self.column {
            Column::Col(c) => Some(c),
            Column::Expr(_) => None,
        }
    }
}

/// What kind of table backs an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    /// A table Valet owns (`obj_*`), with `org_id` and `is_deleted` columns.
    Owned,
    /// A read-only view onto Valet's own tables: `users` (User) or `orgs` (Organization). The
    /// column that holds the org's ID is given.
    Virtual { org_column: &'static str },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDef {
    pub name: String,
    pub label: String,
    pub label_plural: String,
    pub key_prefix: String,
    pub table: String,
    pub custom: bool,
    pub backing: Backing,
    pub fields: Vec<FieldDef>,
}

impl ObjectDef {
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.is(name))
    }

    /// The field that holds a relationship named `rel` (`Account` → `AccountId`).
    pub fn relationship(&self, rel: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.relationship_name.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(rel)))
    }

    pub fn name_field(&self) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name_field)
    }

    pub fn read_only(&self) -> bool {
        matches!(self.backing, Backing::Virtual { .. })
    }

    pub fn org_column(&self) -> &str {
        match &self.backing {
            Backing::Owned => "org_id",
            Backing::Virtual { org_column } => org_column,
        }
    }
}

/// A validated API name of a custom object or field: `Widget__c`, `Unit_Price__c`.
///
/// Letters, digits and single underscores, starting with a letter, ending in `__c`, at most
/// 40 characters: the same rule Salesforce applies, and one that makes the lower-cased name a
/// safe SQL identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiName(String);

impl ApiName {
    pub fn parse_custom(s: &str) -> Result<ApiName, String> {
        let Some(stem) = s.strip_suffix("__c") else {
            return Err(format!("'{s}': custom names end in __c"));
        };
        let ok = s.len() <= 40
            && stem.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !stem.contains("__")
            && !stem.ends_with('_');
        if ok {
            Ok(ApiName(s.to_string()))
        } else {
            Err(format!("'{s}': use letters, digits and single underscores, start with a letter, end with __c, at most 40 characters"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SQL identifier: the name lower-cased (SOQL names are case-insensitive).
    pub fn sql_ident(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// `Owner__c` → `Owner__r`.
    pub fn relationship(&self) -> String {
        format!("{}__r", &self.0[..self.0.len() - 3])
    }
}

impl fmt::Display for ApiName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---- standard objects -------------------------------------------------------------------

fn base(name: &str, label: &str, ftype: FieldType, column: &str) -> FieldDef {
    FieldDef {
        name: name.into(),
        label: label.into(),
        ftype,
        column: Column::Col(column.into()),
        length: match ftype.storage() {
            Storage::Id => 18,
            Storage::Text => 255,
            _ => 0,
        },
        precision: match ftype {
            FieldType::Currency | FieldType::Double => 18,
            FieldType::Percent => 3,
            FieldType::Int => 8,
            _ => 0,
        },
        scale: match ftype {
            FieldType::Currency => 2,
            _ => 0,
        },
        required: false,
        createable: true,
        updateable: true,
        custom: false,
        reference_to: None,
        relationship_name: None,
        picklist: Vec::new(),
        restricted_picklist: false,
        default: None,
        name_field: false,
        auto: Auto::No,
    }
}

fn f(name: &str, label: &str, ftype: FieldType, column: &str) -> FieldDef {
    base(name, label, ftype, column)
}

fn text(name: &str, label: &str, column: &str, len: u32) -> FieldDef {
    FieldDef { length: len, ..base(name, label, FieldType::String, column) }
}

fn textarea(name: &str, label: &str, column: &str) -> FieldDef {
    FieldDef { length: 32000, ..base(name, label, FieldType::TextArea, column) }
}

fn picklist(name: &str, label: &str, column: &str, values: &[&str]) -> FieldDef {
    FieldDef {
        picklist: values.iter().map(|v| v.to_string()).collect(),
        ..base(name, label, FieldType::Picklist, column)
    }
}

fn lookup(name: &str, label: &str, column: &str, to: &str, rel: &str) -> FieldDef {
    FieldDef {
        reference_to: Some(to.into()),
        relationship_name: Some(rel.into()),
        ..base(name, label, FieldType::Reference, column)
    }
}

fn read_only(mut f: FieldDef) -> FieldDef {
    f.createable = false;
    f.updateable = false;
    f
}

fn required(mut f: FieldDef) -> FieldDef {
    f.required = true;
    f
}

fn name_field(mut f: FieldDef) -> FieldDef {
    f.name_field = true;
    f
}

/// The system fields every owned object has, in describe order.
pub fn system_fields(owner: bool) -> Vec<FieldDef> {
    let mut v = vec![
        required(read_only(f("Id", "Record ID", FieldType::Id, "id"))),
        required(read_only(f("IsDeleted", "Deleted", FieldType::Boolean, "is_deleted"))),
    ];
    if owner {
        v.push(required(FieldDef {
            createable: true,
            updateable: true,
            ..lookup("OwnerId", "Owner ID", "owner_id", "User", "Owner")
        }));
    }
    v.extend([
        required(read_only(f("CreatedDate", "Created Date", FieldType::DateTime, "created_date"))),
        required(read_only(lookup("CreatedById", "Created By ID", "created_by_id", "User", "CreatedBy"))),
        required(read_only(f("LastModifiedDate", "Last Modified Date", FieldType::DateTime, "last_modified_date"))),
        required(read_only(lookup(
            "LastModifiedById",
            "Last Modified By ID",
            "last_modified_by_id",
            "User",
            "LastModifiedBy",
        ))),
        required(read_only(f("SystemModstamp", "System Modstamp", FieldType::DateTime, "system_modstamp"))),
    ]);
    v
}

const INDUSTRIES: &[&str] = &[
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Environmental",
    "Finance",
    "Food & Beverage",
    "Government",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Machinery",
    "Manufacturing",
    "Media",
    "Not For Profit",
    "Recreation",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
    "Other",
];
const LEAD_SOURCES: &[&str] = &["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"];

fn owned(name: &str, label: &str, plural: &str, prefix: &str, fields: Vec<FieldDef>) -> ObjectDef {
    let mut all = system_fields(true);
    all.extend(fields);
    ObjectDef {
        name: name.into(),
        label: label.into(),
        label_plural: plural.into(),
        key_prefix: prefix.into(),
        table: format!("obj_{}", name.to_ascii_lowercase()),
        custom: false,
        backing: Backing::Owned,
        fields: all,
    }
}

fn account() -> ObjectDef {
    owned(
        "Account",
        "Account",
        "Accounts",
        "001",
        vec![
            name_field(required(text("Name", "Account Name", "name", 255))),
            picklist(
                "Type",
                "Account Type",
                "type",
                &[
                    "Prospect",
                    "Customer - Direct",
                    "Customer - Channel",
                    "Channel Partner / Reseller",
                    "Installation Partner",
                    "Technology Partner",
                    "Other",
                ],
            ),
            lookup("ParentId", "Parent Account ID", "parent_id", "Account", "Parent"),
            text("AccountNumber", "Account Number", "account_number", 40),
            text("Site", "Account Site", "site", 80),
            picklist("Industry", "Industry", "industry", INDUSTRIES),
            f("AnnualRevenue", "Annual Revenue", FieldType::Currency, "annual_revenue"),
            f("NumberOfEmployees", "Employees", FieldType::Int, "number_of_employees"),
            picklist("Rating", "Account Rating", "rating", &["Hot", "Warm", "Cold"]),
            f("Phone", "Account Phone", FieldType::Phone, "phone"),
            f("Fax", "Account Fax", FieldType::Phone, "fax"),
            f("Website", "Website", FieldType::Url, "website"),
            text("BillingStreet", "Billing Street", "billing_street", 255),
            text("BillingCity", "Billing City", "billing_city", 40),
            text("BillingState", "Billing State/Province", "billing_state", 80),
            text("BillingPostalCode", "Billing Zip/Postal Code", "billing_postal_code", 20),
            text("BillingCountry", "Billing Country", "billing_country", 80),
            textarea("Description", "Account Description", "description"),
        ],
    )
}

fn contact() -> ObjectDef {
    owned(
        "Contact",
        "Contact",
        "Contacts",
        "003",
        vec![
            lookup("AccountId", "Account ID", "account_id", "Account", "Account"),
            text("FirstName", "First Name", "first_name", 40),
            required(text("LastName", "Last Name", "last_name", 80)),
            FieldDef {
                auto: Auto::FullName,
                ..name_field(required(read_only(text("Name", "Full Name", "name", 121))))
            },
            text("Title", "Title", "title", 128),
            text("Department", "Department", "department", 80),
            f("Email", "Email", FieldType::Email, "email"),
            f("Phone", "Business Phone", FieldType::Phone, "phone"),
            f("MobilePhone", "Mobile Phone", FieldType::Phone, "mobile_phone"),
            f("Birthdate", "Birthdate", FieldType::Date, "birthdate"),
            picklist("LeadSource", "Lead Source", "lead_source", LEAD_SOURCES),
            text("MailingCity", "Mailing City", "mailing_city", 40),
            text("MailingCountry", "Mailing Country", "mailing_country", 80),
            FieldDef {
                default: Some(DefaultValue::Bool(false)),
                ..required(f("HasOptedOutOfEmail", "Email Opt Out", FieldType::Boolean, "has_opted_out_of_email"))
            },
            textarea("Description", "Contact Description", "description"),
        ],
    )
}

fn lead() -> ObjectDef {
    owned(
        "Lead",
        "Lead",
        "Leads",
        "00Q",
        vec![
            text("FirstName", "First Name", "first_name", 40),
            required(text("LastName", "Last Name", "last_name", 80)),
            FieldDef {
                auto: Auto::FullName,
                ..name_field(required(read_only(text("Name", "Full Name", "name", 121))))
            },
            required(text("Company", "Company", "company", 255)),
            text("Title", "Title", "title", 128),
            f("Email", "Email", FieldType::Email, "email"),
            f("Phone", "Phone", FieldType::Phone, "phone"),
            f("Website", "Website", FieldType::Url, "website"),
            FieldDef {
                default: Some(DefaultValue::Text("Open - Not Contacted".into())),
                ..required(picklist(
                    "Status",
                    "Status",
                    "status",
                    &["Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted"],
                ))
            },
            picklist("LeadSource", "Lead Source", "lead_source", LEAD_SOURCES),
            picklist("Industry", "Industry", "industry", INDUSTRIES),
            picklist("Rating", "Rating", "rating", &["Hot", "Warm", "Cold"]),
            f("AnnualRevenue", "Annual Revenue", FieldType::Currency, "annual_revenue"),
            f("NumberOfEmployees", "Employees", FieldType::Int, "number_of_employees"),
            text("City", "City", "city", 40),
            text("State", "State/Province", "state", 80),
            text("Country", "Country", "country", 80),
            FieldDef {
                default: Some(DefaultValue::Bool(false)),
                ..required(read_only(f("IsConverted", "Converted", FieldType::Boolean, "is_converted")))
            },
            textarea("Description", "Description", "description"),
        ],
    )
}

fn opportunity() -> ObjectDef {
    owned(
        "Opportunity",
        "Opportunity",
        "Opportunities",
        "006",
        vec![
            lookup("AccountId", "Account ID", "account_id", "Account", "Account"),
            name_field(required(text("Name", "Name", "name", 120))),
            textarea("Description", "Description", "description"),
            required(picklist(
                "StageName",
                "Stage",
                "stage_name",
                &[
                    "Prospecting",
                    "Qualification",
                    "Needs Analysis",
                    "Value Proposition",
                    "Id. Decision Makers",
                    "Perception Analysis",
                    "Proposal/Price Quote",
                    "Negotiation/Review",
                    "Closed Won",
                    "Closed Lost",
                ],
            )),
            f("Amount", "Amount", FieldType::Currency, "amount"),
            f("Probability", "Probability (%)", FieldType::Percent, "probability"),
            required(f("CloseDate", "Close Date", FieldType::Date, "close_date")),
            picklist("Type", "Opportunity Type", "type", &["Existing Business", "New Business"]),
            text("NextStep", "Next Step", "next_step", 255),
            picklist("LeadSource", "Lead Source", "lead_source", LEAD_SOURCES),
        ],
    )
}

fn case() -> ObjectDef {
    owned(
        "Case",
        "Case",
        "Cases",
        "500",
        vec![
            FieldDef {
                auto: Auto::CaseNumber,
                ..name_field(required(read_only(text("CaseNumber", "Case Number", "case_number", 30))))
            },
            lookup("ContactId", "Contact ID", "contact_id", "Contact", "Contact"),
            lookup("AccountId", "Account ID", "account_id", "Account", "Account"),
            text("SuppliedName", "Name", "supplied_name", 80),
            f("SuppliedEmail", "Email Address", FieldType::Email, "supplied_email"),
            picklist("Type", "Case Type", "type", &["Mechanical", "Electrical", "Electronic", "Structural", "Other"]),
            FieldDef {
                default: Some(DefaultValue::Text("New".into())),
                ..picklist("Status", "Status", "status", &["New", "Working", "Escalated", "Closed"])
            },
            picklist(
                "Reason",
                "Case Reason",
                "reason",
                &[
                    "Installation",
                    "Equipment Complexity",
                    "Performance",
                    "Breakdown",
                    "Equipment Design",
                    "Feedback",
                    "Other",
                ],
            ),
            picklist("Origin", "Case Origin", "origin", &["Phone", "Email", "Web"]),
            text("Subject", "Subject", "subject", 255),
            FieldDef {
                default: Some(DefaultValue::Text("Medium".into())),
                ..picklist("Priority", "Priority", "priority", &["High", "Medium", "Low"])
            },
            textarea("Description", "Description", "description"),
            FieldDef {
                default: Some(DefaultValue::Bool(false)),
                ..required(f("IsEscalated", "Escalated", FieldType::Boolean, "is_escalated"))
            },
        ],
    )
}

fn expr(name: &str, label: &str, ftype: FieldType, e: &'static str) -> FieldDef {
    read_only(FieldDef { column: Column::Expr(e), ..base(name, label, ftype, "") })
}

/// User: the org's real users (the `users` table), read-only through the API.
fn user() -> ObjectDef {
    ObjectDef {
        name: "User".into(),
        label: "User".into(),
        label_plural: "Users".into(),
        key_prefix: "005".into(),
        table: "users".into(),
        custom: false,
        backing: Backing::Virtual { org_column: "org_id" },
        fields: vec![
            required(read_only(f("Id", "User ID", FieldType::Id, "id"))),
            required(read_only(text("Username", "Username", "username", 80))),
            read_only(text("FirstName", "First Name", "first_name", 40)),
            required(read_only(text("LastName", "Last Name", "last_name", 80))),
            name_field(expr("Name", "Full Name", FieldType::String, "TRIM({t}.first_name || ' ' || {t}.last_name)")),
            required(read_only(f("Email", "Email", FieldType::Email, "email"))),
            expr("Alias", "Alias", FieldType::String, "SUBSTR({t}.username_lower, 1, 8)"),
            expr("CommunityNickname", "Nickname", FieldType::String, "{t}.username_lower"),
            required(read_only(f("IsActive", "Active", FieldType::Boolean, "active"))),
            required(read_only(text("TimeZoneSidKey", "Time Zone", "timezone", 40))),
            required(read_only(text("LocaleSidKey", "Locale", "locale", 40))),
            required(read_only(text("LanguageLocaleKey", "Language", "language", 40))),
            expr("UserType", "User Type", FieldType::Picklist, "'Standard'"),
            read_only(lookup("ContactId", "Contact ID", "", "Contact", "Contact")).with_expr("CAST(NULL AS TEXT)"),
            required(read_only(f("CreatedDate", "Created Date", FieldType::DateTime, "created_at"))),
            required(read_only(f("LastModifiedDate", "Last Modified Date", FieldType::DateTime, "updated_at"))),
            required(read_only(f("SystemModstamp", "System Modstamp", FieldType::DateTime, "updated_at"))),
            required(expr("IsDeleted", "Deleted", FieldType::Boolean, "0")),
        ],
    }
}

/// Organization: the org itself (the `orgs` table); the sf CLI and simple-salesforce query it.
fn organization() -> ObjectDef {
    ObjectDef {
        name: "Organization".into(),
        label: "Organization".into(),
        label_plural: "Organizations".into(),
        key_prefix: "00D".into(),
        table: "orgs".into(),
        custom: false,
        backing: Backing::Virtual { org_column: "id" },
        fields: vec![
            required(read_only(f("Id", "Organization ID", FieldType::Id, "id"))),
            name_field(required(read_only(text("Name", "Name", "name", 80)))),
            expr("InstanceName", "Instance Name", FieldType::String, "'VALET'"),
            required(expr("IsSandbox", "Is Sandbox", FieldType::Boolean, "0")),
            expr("OrganizationType", "Edition", FieldType::Picklist, "'Developer Edition'"),
            expr("NamespacePrefix", "Namespace Prefix", FieldType::String, "CAST(NULL AS TEXT)"),
            expr("TrialExpirationDate", "Trial Expiration Date", FieldType::DateTime, "CAST(NULL AS BIGINT)"),
            expr("Country", "Country", FieldType::String, "'US'"),
            expr("LanguageLocaleKey", "Language", FieldType::Picklist, "'en_US'"),
            expr("DefaultLocaleSidKey", "Locale", FieldType::Picklist, "'en_US'"),
            expr("TimeZoneSidKey", "Time Zone", FieldType::Picklist, "'America/Los_Angeles'"),
            required(read_only(f("CreatedDate", "Created Date", FieldType::DateTime, "created_at"))),
            required(read_only(f("LastModifiedDate", "Last Modified Date", FieldType::DateTime, "updated_at"))),
            required(read_only(f("SystemModstamp", "System Modstamp", FieldType::DateTime, "updated_at"))),
            required(expr("IsDeleted", "Deleted", FieldType::Boolean, "0")),
        ],
    }
}

impl FieldDef {
    fn with_expr(mut self, e: &'static str) -> FieldDef {
        self.column = Column::Expr(e);
        self
    }
}

/// The standard objects, in describeGlobal order.
pub fn standard_objects() -> Vec<ObjectDef> {
    vec![account(), case(), contact(), lead(), opportunity(), organization(), user()]
}

/// Names that custom objects may not take (standard objects, and what clients probe for).
pub fn is_reserved_object_name(name: &str) -> bool {
    standard_objects().iter().any(|o| o.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn custom_names() {
        assert!(ApiName::parse_custom("Widget__c").is_ok());
        assert!(ApiName::parse_custom("Unit_Price__c").is_ok());
        for bad in [
            "Widget",
            "__c",
            "1a__c",
            "a__b__c",
            "a_b___c",
            "a-b__c",
            "a\"b__c",
            "a b__c",
            &format!("{}__c", "a".repeat(38)),
        ] {
            assert!(ApiName::parse_custom(bad).is_err(), "{bad}");
        }
        assert_eq!(ApiName::parse_custom("Owner__c").unwrap().relationship(), "Owner__r");
    }

    #[test]
    fn standard_objects_are_consistent() {
        for o in standard_objects() {
            assert!(o.field("Id").is_some(), "{}", o.name);
            assert!(o.name_field().is_some(), "{}", o.name);
            for f in &o.fields {
                if let Column::Col(c) = &f.column {
                    assert!(c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{}", c);
                }
                if f.ftype == FieldType::Reference {
                    assert!(f.reference_to.is_some() && f.relationship_name.is_some());
                }
            }
        }
    }
}
