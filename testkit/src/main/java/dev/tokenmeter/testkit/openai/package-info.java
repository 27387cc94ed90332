/**
 * The fake OpenAI upstream: the only fake in tokenmeter's tests, demo and benchmarks.
 *
 * <h2>What it serves</h2>
 * {@link dev.tokenmeter.testkit.openai.FakeOpenAi} listens on {@code 127.0.0.1} (a free port unless told otherwise)
 * and speaks OpenAI's wire format closely enough for the official SDKs and the edge proxy:
 * <ul>
 *   <li>{@code POST /v1/chat/completions}: a {@code chat.completion} object, or with {@code "stream":true} an SSE
 *       stream ({@code text/event-stream}) of {@code data: {chat.completion.chunk}} events ending in
 *       {@code data: [DONE]}. The first chunk carries {@code delta.role}, then one chunk per reply word
 *       ({@code delta.content}), then a chunk with an empty delta and {@code finish_reason}. With
 *       {@code stream_options.include_usage} every one of those chunks has {@code "usage": null} and one more
 *       chunk follows with {@code "choices": []} and the {@code usage}, just before {@code [DONE]}; without it no
 *       chunk has a {@code usage} field.</li>
 *   <li>{@code POST /v1/completions}: {@code text_completion}, streaming likewise.</li>
 *   <li>{@code POST /v1/embeddings}: a {@code list} of {@code embedding}s, unit vectors of 8 floats (or
 *       {@code dimensions}) derived from the input, so equal inputs get equal vectors; {@code encoding_format:
 *       "base64"} (the Python SDK's default) gives little-endian float32 in base64.</li>
 *   <li>{@code POST /v1/responses}: a {@code response} object, or with {@code "stream":true} the typed events
 *       ({@code event: response.created} ... {@code response.output_text.delta} per word ...
 *       {@code response.completed} carrying the usage; no {@code [DONE]}, as OpenAI does). When
 *       {@code max_output_tokens} cuts the reply short the status is {@code incomplete}
 *       ({@code incomplete_details.reason = max_output_tokens}) and the stream ends with
 *       {@code response.incomplete}, which carries the usage too.</li>
 *   <li>{@code POST /v1/moderations}: {@code modr-} id, the answered snapshot ({@code omni-moderation-latest} →
 *       {@code omni-moderation-2024-09-26}, also when the body names no model), one unflagged result per input
 *       string (one for content parts); no usage object and no {@code service_tier}, as OpenAI answers.</li>
 *   <li>{@code POST /v1/images/generations}: gpt-image-1's answer, {@code n} tiny PNGs in {@code b64_json} and the
 *       image-token usage object: {@code input_tokens} = the prompt's o200k tokens (all text, so
 *       {@code input_tokens_details.image_tokens = 0}), {@code output_tokens} = n × OpenAI's table by quality and
 *       size ({@code auto} quality = medium, {@code auto} size = 1024x1024); no model, no tier.</li>
 *   <li>{@code POST /v1/audio/speech}: {@code audio/mpeg} bytes, {@code 4 + 16 ×} the input's code points long,
 *       no usage (OpenAI bills tts-1 by input characters); {@code usageFor} gives the code points as prompt.</li>
 *   <li>{@code POST /v1/audio/transcriptions}, {@code /v1/audio/translations}, {@code /v1/images/edits}: multipart
 *       uploads answered with a usage derived from the upload ({@link dev.tokenmeter.testkit.openai.FakeUploads},
 *       ADR 0088); transcriptions and translations are counted by their seconds in
 *       {@code GET /v1/organization/usage/audio_transcriptions}, edits in {@code /usage/images}.</li>
 *   <li>{@code GET /v1/organization/usage/images} ({@code images}, group_by also size and source
 *       {@code image.generation | image.edit}), {@code /usage/audio_speeches} ({@code characters}),
 *       {@code /usage/audio_transcriptions} ({@code seconds}) and {@code /usage/moderations} ({@code input_tokens}),
 *       each with {@code num_model_requests}; their cost line items ({@code "gpt-image-1, image input"},
 *       {@code "tts-1, characters"}, {@code "whisper-1, seconds"}, {@code "gpt-4o-mini-transcribe, audio input"}, ...;
 *       moderations are free) are in the Costs API, drift applies to them too (ADR 0086).</li>
 *   <li>{@code GET /v1/models}, {@code GET /v1/models/{id}}.</li>
 *   <li>{@code GET /v1/organization/usage/completions}, {@code /usage/embeddings} and {@code /v1/organization/costs}
 *       (admin key only, {@code FakeOpenAi.DEFAULT_ADMIN_KEY} unless the builder names another): OpenAI's Usage and
 *       Costs APIs over the fake's own record of the calls it answered (not cut, not failed; only the organization's
 *       keys when the builder names them), buckets of 1m/1h/1d (costs: 1d), {@code group_by} model, project_id
 *       (from the {@code OpenAI-Project} header), api_key_id, service_tier; costs by line_item
 *       ({@code "<model>, input"}, {@code ", cached input"}, {@code ", output"}) at the 2025 list prices; paged with
 *       {@code limit}, {@code has_more}, {@code next_page}. {@code FakeOpenAi.drift(Drift)} makes them report extra
 *       requests or another price ({@code UpstreamLedger}).</li>
 * </ul>
 * Answers name the model as OpenAI does: a family name from the 2025 price list ({@code gpt-4o-mini}, {@code gpt-5},
 * ...) is answered with its dated snapshot ({@code gpt-4o-mini-2024-07-18}; the table is {@code FakeCall.SNAPSHOTS}),
 * any other name as asked. Chat, chat chunks and responses carry {@code service_tier}: the request's {@code flex} or
 * {@code priority}, else {@code default} (OpenAI's standard tier), or what the {@code tier} directive says.
 * Every answer carries a unique {@code x-request-id} ({@code req_} + 32 hex), {@code openai-processing-ms},
 * {@code openai-version}, and {@code x-ratelimit-*} headers; completions carry a unique body {@code id}
 * ({@code chatcmpl-}, {@code cmpl-}, {@code resp_}). Errors are OpenAI's error object
 * {@code {"error":{"message","type","param","code"}}}: no or non-Bearer {@code Authorization} gives 401 (any
 * non-blank Bearer key is accepted), a body that is not a JSON object gives 400, a missing {@code model},
 * {@code messages}, {@code prompt} or {@code input} gives 400 naming the {@code param}, an unknown path gives 404
 * {@code Invalid URL (POST /v1/...)}. Forced statuses use OpenAI's types and codes (401 {@code invalid_api_key},
 * 404 {@code model_not_found}, 429 type {@code requests} code {@code rate_limit_exceeded}, 5xx type
 * {@code server_error}).
 *
 * <h2>Deterministic usage</h2>
 * {@link dev.tokenmeter.testkit.openai.FakeOpenAi#usageFor(String, String)} returns exactly what the fake will
 * report for a body, so tests compute the expected cost without parsing answers. {@code tokens(s)} is the jtokkit
 * {@code o200k_base} count of {@code s} (special tokens read as plain text); content given as an array of parts
 * counts the concatenated {@code text} of its parts; images, tools and names are not counted.
 * <ul>
 *   <li><b>Chat prompt</b> = 3 + Σ over messages (4 + tokens(content)).</li>
 *   <li><b>Responses prompt</b> = 3 + (4 + tokens(instructions), if given) + Σ over input items
 *       (4 + tokens(content or output)); a string input is one item.</li>
 *   <li><b>Completions / embeddings prompt</b> = Σ tokens(each string); a token-id array counts its length.</li>
 *   <li><b>Cached prompt</b> = 0, or {@code min(N, prompt)} with the {@code cached=N} directive.</li>
 *   <li><b>Completion</b> = min(16 or the {@code completion=N} directive, the cap), where the cap is
 *       {@code max_completion_tokens}, else {@code max_tokens} (chat), {@code max_tokens} (completions),
 *       {@code max_output_tokens} (responses); no cap if absent. {@code finish_reason} is {@code length} when
 *       the cap cut it short, else {@code stop}. Embeddings have no completion.</li>
 *   <li><b>Reasoning</b> = completion / 4 (integer division) for models whose name starts with {@code o} or
 *       {@code gpt-5} (chat and responses), else 0. As at OpenAI it is part of the completion tokens, so the
 *       visible reply has completion − reasoning tokens.</li>
 *   <li><b>Reply</b>: "this is a fake reply from the upstream with one token per word for each delta" cycled to
 *       completion − reasoning words, each exactly one o200k token; a stream sends one delta per word, so
 *       {@code number of content deltas = completion − reasoning}.</li>
 * </ul>
 *
 * <h2>Steering</h2>
 * Directives in the <i>last user message</i> (chat: last {@code role:user} message; responses: the string input
 * or last user item; completions/embeddings: the last string of {@code prompt}/{@code input}) steer one call
 * without special headers, so demo traffic through the proxy can use them. They stay in the text and count as
 * prompt tokens. An unknown key or bad value gives 400.
 * <ul>
 *   <li>{@code [[fake:status=500]]}: that status with OpenAI's error JSON.</li>
 *   <li>{@code [[fake:latency=200ms]]}: wait before answering ({@code ms}, {@code s}, {@code m}; bare number = ms).</li>
 *   <li>{@code [[fake:hang=2s]]}: send nothing, then drop the connection after that long.</li>
 *   <li>{@code [[fake:cut-after=3]]}: stream the role chunk and 3 content chunks, then drop the connection,
 *       with neither finish chunk nor usage chunk nor {@code [DONE]}.</li>
 *   <li>{@code [[fake:cached=128]]}, {@code [[fake:completion=40]]}: usage, as above.</li>
 *   <li>{@code [[fake:tier=priority]]}: the {@code service_tier} the answer reports (1–16 of {@code [a-z]}), whatever
 *       the request asked for.</li>
 *   <li>{@code [[fake:model=gpt-4o-2024-05-13]]}: the {@code model} the answer names (1–64 of
 *       {@code [A-Za-z0-9._:-]}), instead of the requested one or its snapshot — an upstream that served another
 *       model than asked.</li>
 * </ul>
 * A {@link dev.tokenmeter.testkit.openai.Behavior} enqueued with
 * {@link dev.tokenmeter.testkit.openai.FakeOpenAi#enqueue} applies to exactly the next request, whatever its path,
 * and wins over that request's behaviour directives (usage directives always apply, so {@code usageFor} holds).
 * {@code Behavior.usageAfter(delay)} streams every content chunk and the finish chunk, then waits that long before
 * the usage chunk and {@code [DONE]} (as a reasoning model's accounting may lag its last delta).
 * An enqueued {@code status} or {@code hang} applies even before authentication. Builder options apply to every
 * request: {@code latency} (added to any directive latency), {@code failureRate(rate, seed)} (500 for a seeded,
 * repeatable share of the valid {@code POST} requests that have no enqueued behaviour and no status/hang
 * directive) and
 * {@code streamChunkDelay} (before each content chunk).
 *
 * <h2>Files and batches (issue 16)</h2>
 * {@code POST /v1/files} (multipart: {@code purpose}, {@code file}), {@code GET /v1/files/{id}[/content]},
 * {@code POST /v1/batches}, {@code GET /v1/batches[/{id}]}, {@code POST /v1/batches/{id}/cancel}, each seen only by
 * the key that created it ({@link dev.tokenmeter.testkit.openai.FakeBatches}). A batch is {@code validating} for one
 * {@code Builder.batchStep} (default 1 s), {@code in_progress} for another, then {@code completed}: each input line
 * answered as its endpoint would answer it, a line with a {@code [[fake:status=N]]} directive going to the error file
 * with that status. A bad line (not JSON, duplicate {@code custom_id}, other URL) fails the batch at validation;
 * {@code expireNextBatch()} makes the next one end {@code expired} with every line in the error file; a cancel takes one
 * step and answers no line. Answered lines appear in the Usage API with {@code batch = true} and in the Costs API at
 * half the standard price (integer nano-USD halved, rounding down).
 *
 * <h2>Running it</h2>
 * In tests: {@code try (FakeOpenAi openAi = FakeOpenAi.start()) { ... openAi.baseUrl() + "/v1" ... }}.
 * Stand-alone (demo, docker-compose): {@link dev.tokenmeter.testkit.openai.FakeOpenAiMain}, port from the first
 * argument or {@code FAKE_OPENAI_PORT} (default 0 = free port), prints the base URL and runs until killed.
 * Recorded requests are capped at the last {@value dev.tokenmeter.testkit.openai.FakeOpenAi#DEFAULT_MAX_RECORDED_REQUESTS}
 * ({@code Builder.maxRecordedRequests}, 0 to record none for benchmarks); {@code requestCount()} counts all.
 * The fake never logs request bodies or headers.
 */
package dev.tokenmeter.testkit.openai;
