//! What can go wrong reading FHIR.

/// A FHIR resource medtwin could not read.
#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    /// Not JSON, or not the resource's shape.
    #[error("not a FHIR {expected} resource: {source}")]
    Json {
        /// The resource type expected.
        expected: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A resource of another type where one was expected.
    #[error("expected a {expected}, found {found:?}")]
    WrongType {
        /// The resource type expected.
        expected: &'static str,
        /// The one found.
        found: String,
    },
    /// An element medtwin needs is missing or malformed.
    #[error("{element}: {problem}")]
    Element {
        /// FHIRPath of the element.
        element: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl FhirError {
    /// A missing or malformed element.
    pub fn element(element: &'static str, problem: impl Into<String>) -> FhirError {
        FhirError::Element {
            element,
            problem: problem.into(),
        }
    }

    /// The FHIR issue type (`OperationOutcome.issue.code`) a server answers
    /// this error with: `structure` for unreadable JSON, `invalid` for
    /// the rest (FHIR R4 "IssueType").
    pub fn issue_code(&self) -> &'static str {
        match self {
            FhirError::Json { .. } => "structure",
            FhirError::WrongType { .. } | FhirError::Element { .. } => "invalid",
        }
    }

    /// The FHIRPath the error concerns, if any.
    pub fn expression(&self) -> Option<&'static str> {
        match self {
            FhirError::Element { element, .. } => Some(element),
            _ => None,
        }
    }
}
