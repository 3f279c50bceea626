//! GraphQL at `POST /graphql` (API.md "GraphQL"): the same service operations as REST, with
//! the same permission checks and error codes, which travel in `errors[].extensions` (`code`,
//! `type`, `param`, `details`, `request_id`) with HTTP 200. Authentication, the tenant
//! cross-check, rate limits and the body limit are the REST layers, applied to this route too.
//!
//! Query depth and complexity are bounded ([`MAX_DEPTH`], [`MAX_COMPLEXITY`]); the standard
//! introspection query fits within both.
mod types;

use crate::AppState;
use crate::error::{ApiJson, ApiResult, ErrorDetail, Json};
use crate::rest::Auth;
use async_graphql::{
    Context, EmptySubscription, ErrorExtensionValues, ErrorExtensions, ID, Object, Schema,
    ServerError,
};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use casegate_domain::principal::Caller;
use casegate_domain::{Code, Error};
use casegate_service::{Page, Services, approvals, case_types, cases};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use types::{
    AllowedTransition, Case, CaseFilter, CasePage, CreateCaseInput, HistoryEntry,
    TransitionRequest, TransitionResult, TransitionRule, TransitionRuleInput, Workflow,
};

/// Deepest selection accepted (graphql-js's introspection query, eight `ofType` levels deep,
/// needs 14; it weighs about 200).
pub const MAX_DEPTH: usize = 15;
/// Most weighted fields one document may select. A field counts 1, a field that runs queries
/// of its own [`COSTLY`], and what a list of cases selects counts once per case asked for: 200
/// cases with twenty plain fields fit, 200 cases each with their history and allowed moves
/// do not.
pub const MAX_COMPLEXITY: usize = 5_000;
/// Most directives on one field (async-graphql leaves this open).
pub const MAX_DIRECTIVES: usize = 5;
/// The weight of a field that reads the database on its own (history, allowed moves, …).
pub const COSTLY: usize = 20;

/// The schema type.
pub type CasegateSchema = Schema<Query, Mutation, EmptySubscription>;

/// Builds the schema around the services.
pub fn schema(svc: Arc<Services>) -> CasegateSchema {
    Schema::build(Query, Mutation, EmptySubscription)
        .data(svc)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_directives(MAX_DIRECTIVES)
        .finish()
}

/// `POST /graphql`: one operation per request (`{"query", "operationName", "variables"}`).
pub async fn graphql(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<async_graphql::Request>,
) -> ApiResult<Response> {
    let query = req.query.clone();
    let mut resp = st.graphql.execute(req.data(p)).await;
    // A document with many faults gets the first few (and is parsed again once, not per error).
    resp.errors.truncate(MAX_ERRORS);
    if resp.errors.iter().any(uncoded) {
        let malformed = async_graphql::parser::parse_query(&query).is_err();
        for e in resp.errors.iter_mut().filter(|e| uncoded(e)) {
            coded(e, malformed);
        }
    }
    Ok(Json(resp).into_response())
}

/// Most errors one answer lists.
const MAX_ERRORS: usize = 20;

fn uncoded(e: &ServerError) -> bool {
    e.extensions
        .as_ref()
        .is_none_or(|x| x.get("code").is_none())
}

/// Gives an error raised by GraphQL itself (syntax, validation, limits) the code of API.md;
/// errors from resolvers already carry theirs.
fn coded(e: &mut ServerError, malformed: bool) {
    let code = if malformed {
        Code::MalformedRequest
    } else if e.message == "Query is nested too deep."
        || e.message == "Query is too complex."
        || e.message.starts_with("The recursion depth of the query")
    {
        Code::QueryTooComplex
    } else {
        Code::ValidationFailed
    };
    let mut x = ErrorExtensionValues::default();
    x.set("code", code.as_str());
    x.set("type", code.kind());
    x.set("request_id", crate::error::current_request_id());
    if code == Code::QueryTooComplex {
        x.set(
            "details",
            async_graphql::Value::from_json(serde_json::json!({
                "max_depth": MAX_DEPTH, "max_complexity": MAX_COMPLEXITY,
            }))
            .unwrap_or_default(),
        );
    }
    e.extensions = Some(x);
}

/// A service error as a GraphQL error: the REST error body's fields go to `extensions`.
pub(crate) fn gql(e: Error) -> async_graphql::Error {
    let d = ErrorDetail::of(e);
    let details = async_graphql::Value::from_json(d.details).unwrap_or_default();
    async_graphql::Error::new(d.message).extend_with(move |_, x| {
        x.set("code", d.code.clone());
        x.set("type", d.kind.clone());
        if let Some(p) = &d.param {
            x.set("param", p.clone());
        }
        x.set("request_id", d.request_id.clone());
        x.set("details", details.clone());
    })
}

/// The caller the handler put in the request.
pub(crate) fn caller<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Caller> {
    ctx.data::<Caller>()
        .map_err(|_| gql(Error::unauthenticated("authentication required")))
}

pub(crate) fn services<'a>(ctx: &Context<'a>) -> &'a Services {
    ctx.data_unchecked::<Arc<Services>>()
}

/// Reads a service value through its wire JSON into the GraphQL type of the same shape.
pub(crate) fn wire<T: DeserializeOwned>(v: &impl Serialize) -> async_graphql::Result<T> {
    serde_json::to_value(v)
        .and_then(serde_json::from_value)
        .map_err(|e| gql(Error::internal(e)))
}

/// The read operations.
pub struct Query;

#[Object]
impl Query {
    /// A case by id or reference, or null when there is none in the caller's organisation.
    #[graphql(complexity = "COSTLY + child_complexity")]
    async fn case(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Case>> {
        match cases::get(services(ctx), caller(ctx)?, &id).await {
            Ok(d) => Ok(Some(d.into())),
            Err(e) if e.code == Code::NotFound => Ok(None),
            Err(e) => Err(gql(e)),
        }
    }

    /// Cases matching `filter`, newest first unless `filter.sort` says otherwise.
    #[graphql(complexity = "5 + limit.unwrap_or(20).clamp(0, 200) as usize * child_complexity")]
    async fn cases(
        &self,
        ctx: &Context<'_>,
        filter: Option<CaseFilter>,
        #[graphql(desc = "1-200, default 20")] limit: Option<i64>,
        offset: Option<i64>,
    ) -> async_graphql::Result<CasePage> {
        let page = Page::new(limit, offset).map_err(gql)?;
        let q = filter.unwrap_or_default().into();
        let found = cases::list(services(ctx), caller(ctx)?, q, page)
            .await
            .map_err(gql)?;
        Ok(CasePage {
            cases: found.cases.into_iter().map(Case::from).collect(),
            total: found.total,
            total_exact: found.total_exact,
            limit: page.limit,
            offset: page.offset,
        })
    }

    /// The moves the caller may make on the case now, and what blocks the others.
    #[graphql(complexity = "COSTLY + child_complexity")]
    async fn allowed_transitions(
        &self,
        ctx: &Context<'_>,
        case_id: ID,
    ) -> async_graphql::Result<Vec<AllowedTransition>> {
        types::allowed(ctx, &case_id).await
    }

    /// Every applied move of the case, oldest first.
    #[graphql(complexity = "COSTLY + child_complexity")]
    async fn status_history(
        &self,
        ctx: &Context<'_>,
        case_id: ID,
    ) -> async_graphql::Result<Vec<HistoryEntry>> {
        let entries = cases::history(services(ctx), caller(ctx)?, &case_id)
            .await
            .map_err(gql)?;
        Ok(entries.into_iter().map(HistoryEntry).collect())
    }

    /// A transition request, or null when there is none in the caller's organisation.
    #[graphql(complexity = "COSTLY + child_complexity")]
    async fn transition_request(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<TransitionRequest>> {
        match approvals::get(services(ctx), caller(ctx)?, &id).await {
            Ok(r) => Ok(Some(r.into())),
            Err(e) if e.code == Code::NotFound => Ok(None),
            Err(e) => Err(gql(e)),
        }
    }

    /// The caller's inbox: pending requests whose current tier has a slot the caller may fill,
    /// oldest first.
    #[graphql(complexity = "5 + limit.unwrap_or(20).clamp(0, 200) as usize * child_complexity")]
    async fn pending_approvals(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "1-200, default 20")] limit: Option<i64>,
        offset: Option<i64>,
    ) -> async_graphql::Result<Vec<TransitionRequest>> {
        let page = Page::new(limit, offset).map_err(gql)?;
        let q = approvals::ListQuery {
            mine: true,
            sort: Some("requested_at".into()),
            ..Default::default()
        };
        let found = approvals::list(services(ctx), caller(ctx)?, q, page)
            .await
            .map_err(gql)?;
        Ok(found.requests.into_iter().map(Into::into).collect())
    }

    /// The workflow of a case type, or null when the organisation has no such type.
    #[graphql(complexity = "COSTLY + child_complexity")]
    async fn workflow(
        &self,
        ctx: &Context<'_>,
        case_type: String,
    ) -> async_graphql::Result<Option<Workflow>> {
        match case_types::get(services(ctx), caller(ctx)?, &case_type).await {
            Ok(t) => Ok(Some(Workflow(t))),
            Err(e) if e.code == Code::NotFound => Ok(None),
            Err(e) => Err(gql(e)),
        }
    }
}

/// The commands.
pub struct Mutation;

#[Object]
impl Mutation {
    /// Opens a case in its workflow's initial status (`case.create`).
    #[graphql(complexity = "COSTLY + child_complexity")]
    async fn create_case(
        &self,
        ctx: &Context<'_>,
        input: CreateCaseInput,
    ) -> async_graphql::Result<Case> {
        let c = cases::create(services(ctx), caller(ctx)?, input.body())
            .await
            .map_err(gql)?;
        Ok(c.into())
    }

    /// Asks to move a case (`case.transition`): applied at once, or a request opens when the
    /// rule needs approval.
    #[graphql(complexity = "COSTLY + child_complexity")]
    async fn request_transition(
        &self,
        ctx: &Context<'_>,
        case_id: ID,
        to: String,
        reason: Option<String>,
        #[graphql(desc = "Refuse (version_conflict) unless the case still has this version")]
        expected_version: Option<i64>,
    ) -> async_graphql::Result<TransitionResult> {
        let (svc, p) = (services(ctx), caller(ctx)?);
        let moved = cases::transition(svc, p, &case_id, &to, reason.as_deref(), expected_version)
            .await
            .map_err(gql)?;
        Ok(match moved {
            cases::Moved::Applied(case, entry) => TransitionResult {
                applied: true,
                history_entry: Some(HistoryEntry(*entry)),
                request: None,
                moved: Some(*case),
                case_id: case_id.to_string(),
            },
            cases::Moved::Requested(r) => TransitionResult {
                applied: false,
                history_entry: None,
                request: Some((*r).into()),
                moved: None,
                case_id: case_id.to_string(),
            },
        })
    }

    /// Approves the slot the caller fills in the request's current tier (`approval.decide`);
    /// the last approval needed applies the move.
    #[graphql(complexity = "COSTLY + child_complexity")]
    async fn approve_transition(
        &self,
        ctx: &Context<'_>,
        request_id: ID,
        comment: Option<String>,
    ) -> async_graphql::Result<TransitionRequest> {
        let d = approvals::approve(services(ctx), caller(ctx)?, &request_id, comment.as_deref())
            .await
            .map_err(gql)?;
        Ok(TransitionRequest(d.request, d.applied.map(|(_, h)| h)))
    }

    /// Rejects the request (`approval.decide`); one rejection vetoes it.
    #[graphql(complexity = "COSTLY + child_complexity")]
    async fn reject_transition(
        &self,
        ctx: &Context<'_>,
        request_id: ID,
        comment: String,
    ) -> async_graphql::Result<TransitionRequest> {
        let d = approvals::reject(services(ctx), caller(ctx)?, &request_id, Some(&comment))
            .await
            .map_err(gql)?;
        Ok(d.request.into())
    }

    /// Adds a rule to a case type's workflow, or replaces the rule with the same id
    /// (`workflow.admin`); the workflow is validated as a whole and saved as a new version.
    #[graphql(complexity = "COSTLY + child_complexity")]
    async fn upsert_transition_rule(
        &self,
        ctx: &Context<'_>,
        case_type: String,
        rule: TransitionRuleInput,
    ) -> async_graphql::Result<TransitionRule> {
        let (_, saved) =
            case_types::upsert_rule(services(ctx), caller(ctx)?, &case_type, rule.document())
                .await
                .map_err(gql)?;
        wire(&saved)
    }
}
