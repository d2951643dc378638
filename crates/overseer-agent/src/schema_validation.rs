//! JSON Schema validators on an agent's outputs (feature `schema`, which turns on
//! `overseer-semantic`'s): a schema given as JSON, compiled once when the spec is built, checks
//! every output of a task type (or every output) as any validator does.

use overseer_semantic::schema::{Schema, SchemaError};
use overseer_semantic::validator::{from_schema, MatchesSchema, Validator};

use crate::agent::Agent;
use crate::spec::AgentSpec;

impl<A: Agent> AgentSpec<A>
where
    MatchesSchema: Validator<A::Output>,
{
    /// Checks the outputs of tasks of `task_type` against the JSON Schema `schema` (an output
    /// that is text must hold JSON; a [`serde_json::Value`] is checked as it is), as a
    /// [`task_validator`](Self::task_validator) does: an output that does not match fails its
    /// ask with [`AgentError::InvalidOutput`](crate::AgentError::InvalidOutput) naming the
    /// first mismatch and where it is, and the (agent, task type) breaker counts it.
    ///
    /// The schema is compiled here, once; its `$ref`s are resolved within it, never fetched.
    ///
    /// ```
    /// use overseer_agent::{Agent, AgentContext, AgentError, AgentSpec};
    /// use serde_json::json;
    ///
    /// struct Researcher;
    /// impl Agent for Researcher {
    ///     type Task = String;
    ///     type Output = String;
    ///     fn task_type(_: &String) -> &'static str { "report" }
    ///     async fn handle(&mut self, _: &mut AgentContext, _: String) -> Result<String, AgentError> {
    ///         Ok(r#"{"sources": ["https://example.org"]}"#.into())
    ///     }
    /// }
    ///
    /// let spec = AgentSpec::new("researcher", || Researcher).task_schema(
    ///     "report",
    ///     &json!({"type": "object", "required": ["sources"]}),
    /// )?;
    /// # Ok::<(), overseer_agent::semantic::schema::SchemaError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SchemaError`] when `schema` is not a valid JSON Schema.
    pub fn task_schema(
        self,
        task_type: &'static str,
        schema: &serde_json::Value,
    ) -> Result<Self, SchemaError> {
        let schema = Schema::new(schema)?;
        Ok(self.task_validator(task_type, from_schema(schema)))
    }

    /// As [`task_schema`](Self::task_schema), for the outputs of every task type.
    ///
    /// # Errors
    ///
    /// [`SchemaError`] when `schema` is not a valid JSON Schema.
    pub fn output_schema(self, schema: &serde_json::Value) -> Result<Self, SchemaError> {
        let schema = Schema::new(schema)?;
        Ok(self.validator(from_schema(schema)))
    }
}
