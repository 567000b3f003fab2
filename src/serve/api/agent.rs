//! `POST /api/agent/chat`: the operations agent over the server's own tools ([`crate::agent::tools::Host`]).

use super::*;

/// The twin's tools for the agent, acting for one operator.
pub(super) struct Host<'a> {
    st: &'a AppState,
    operator: String,
}

impl crate::agent::tools::Host for Host<'_> {
    fn live(&self) -> &Live {
        &self.st.live
    }

    fn now_ms(&self) -> i64 {
        now_ms()
    }

    fn diagnose<'a>(
        &'a self,
        node: &'a str,
    ) -> crate::agent::tools::LocalBoxFuture<'a, Result<serde_json::Value, String>> {
        Box::pin(async move {
            let d = diagnose(self.st, node).await.map_err(|(_, msg)| msg)?;
            Ok(serde_json::to_value(d).unwrap_or_default())
        })
    }

    fn propose(&self, change: Change, arguments: serde_json::Value) -> Result<serde_json::Value, String> {
        self.st.policy.proposal(&self.operator, change, arguments, now_ms())
    }

    fn pending_ids(&self) -> Vec<String> {
        self.st.policy.pending_ids(&self.operator)
    }

    fn audit_read(&self, tool: &str, args: &serde_json::Value, ok: bool) {
        self.st.policy.audit_read(&self.operator, tool, args, ok)
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct ChatBody {
    /// The conversation so far: OpenAI chat messages (`{"role": "user", "content": "…"}`, …).
    #[schema(value_type = Vec<Object>)]
    messages: Vec<serde_json::Value>,
}

/// Ask the operations agent (any token): grounded in the twin's tools before the model speaks,
/// its answer checked against the twin (else the twin's facts answer); changes it wants become
/// pending actions for the caller to approve.
#[utoipa::path(post, path = "/api/agent/chat", tag = "agent", request_body = ChatBody,
    responses((status = 200, description = "reply (never empty), kind (what the question asks, as read), answered_by (model, or twin when the twin's facts answered), check (why the model's answer was not used), tool_events (by twin: called before the model spoke; by model), pending_actions, unverified_ids, model_available, rounds"), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn agent_chat(req: HttpRequest, payload: web::Payload, st: State) -> HttpResponse {
    let (who, body, _held) = match authorized_body(&req, payload, &st, Access::Read).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let b = match serde_json::from_slice::<ChatBody>(&body) {
        Ok(b) if !b.messages.is_empty() => b,
        Ok(_) => return error(StatusCode::UNPROCESSABLE_ENTITY, "messages is empty", vec![]),
        Err(e) => {
            let f = FieldError { path: "body".into(), message: e.to_string() };
            return error(StatusCode::UNPROCESSABLE_ENTITY, "expected {\"messages\": [...]}", vec![f]);
        }
    };
    let host = Host { st: &st, operator: who };
    let reply = crate::agent::chat::chat(&st.cfg.agent, &host, b.messages).await;
    HttpResponse::Ok().json(reply)
}
