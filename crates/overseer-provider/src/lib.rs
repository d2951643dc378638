//! A real model provider for Overseer: a client of OpenAI's chat completions API, which
//! OpenAI, vLLM, llama.cpp's server, Ollama, LiteLLM's proxy and most hosted providers serve.
//!
//! - [`OpenAiCompatible`] (module [`client`]): a [`ModelClient`](overseer_agent::ModelClient)
//!   on `reqwest`, configured from a base URL, a key and a model name (or
//!   `OPENAI_BASE_URL` / `OPENAI_API_KEY`), with connect and request timeouts shortened to the
//!   request's own; non-streaming ([`chat`](OpenAiCompatible::chat)) and streaming
//!   ([`chat_stream`](OpenAiCompatible::chat_stream), always asking for the usage chunk).
//! - [`ProviderError`] (module [`error`]): typed errors from statuses, bodies and
//!   connections, each with its retry class, converting to
//!   [`ModelError`](overseer_agent::ModelError) with the class kept.
//! - [`Price`] and [`PriceTable`] (module [`price`]): usage (cached prompt tokens apart) to
//!   micro-units, and the estimate of a request a budget reserves.
//! - [`Router`] (module [`router`]) with [`Cooldown`] (module [`cooldown`]): failover over
//!   deployments, cooldowns for one that keeps failing, a breaker per (provider, model).
//! - The wire format ([`wire`]) and server-sent events ([`stream`]) as pure functions.
//!
//! TLS is behind the `rustls` feature: without it the client speaks plain HTTP only (local
//! servers, tests).
//!
//! # Example
//!
//! ```no_run
//! use overseer_agent::{Message, ModelClient, ModelRequest};
//! use overseer_provider::OpenAiCompatible;
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = OpenAiCompatible::from_env("gpt-4o-mini").build()?;
//! let request = ModelRequest::chat([Message::user("Name a prime number.")]).max_tokens(8);
//! let answer = client.chat_stream(&request, |text| print!("{text}")).await?;
//! println!("\n{} tokens in, {} out", answer.usage.input_tokens, answer.usage.output_tokens);
//! # Ok(()) }
//! ```

pub mod client;
pub mod cooldown;
pub mod error;
pub mod price;
pub mod router;
pub mod stream;
pub mod wire;

pub use client::{OpenAiCompatible, OpenAiCompatibleBuilder, OPENAI_BASE_URL};
pub use cooldown::{Cooldown, Health};
pub use error::{from_status, ProviderError};
pub use price::{estimate_tokens, Price, PriceTable};
pub use router::{Deployment, Router};
pub use stream::{Applied, SseDecoder, StreamAnswer};
pub use wire::{request_body, TokenLimitField};
