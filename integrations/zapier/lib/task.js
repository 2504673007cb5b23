'use strict';

// One shape for every task item this app outputs (triggers, actions, searches): the API's task
// object with `id` = task_id, which Zapier uses to de-duplicate.
const toItem = (task) => ({ id: task.task_id, ...task });

// A realistic task, for samples (ISO-8601 UTC dates, as the API sends them).
const SAMPLE_TASK = {
  id: 'task_01jx9m3k7q2w5e8r1t4y6u0i3o',
  task_id: 'task_01jx9m3k7q2w5e8r1t4y6u0i3o',
  run_id: 'run_01jx9m3k7rb2c5d8f1g4h6j9k2',
  title: 'Summarize customer feedback',
  description: 'Summarize the main themes of this feedback: ...',
  agent_type: 'general',
  model: 'claude-sonnet-4',
  priority: 0,
  metadata: { source: 'zapier' },
  tags: ['feedback'],
  codebase_id: null,
  status: 'completed',
  created_at: '2026-02-10T12:00:00.000Z',
  started_at: '2026-02-10T12:00:01.250Z',
  completed_at: '2026-02-10T12:02:25.120Z',
  runtime_seconds: 143.87,
  result: 'The three main themes are pricing, onboarding and support response times.',
  result_summary: 'The three main themes are pricing, onboarding and support response times.',
  // With an Output Schema on create: the answer as an object valid against it (else null).
  result_json: null,
  output_schema: null,
  // Cost cap (CONTRACT section 13), plan-first approval (section 12) and input files (section 11).
  max_cost_usd: null,
  require_approval: null,
  attachments: [],
  error: null,
  retry_count: 0,
  progress: null,
  required_action: null,
  webhook_url: null,
  callback_url: null,
  // Agent work (CONTRACT section 6): files changed in the codebase, its git state, downloadable
  // artifacts and token usage. A task without a codebase changes nothing.
  changes: null,
  git: null,
  artifacts: [],
  usage: { turns: 1, tool_calls: 0, input_tokens: 412, output_tokens: 96 },
};

const sampleWith = (changes) => ({ ...SAMPLE_TASK, ...changes });

// Output fields with friendly labels; Zapier infers the rest from the sample.
const TASK_OUTPUT_FIELDS = [
  { key: 'id', label: 'Task ID' },
  { key: 'task_id', label: 'Task ID (Same as ID)' },
  { key: 'run_id', label: 'Run ID' },
  { key: 'title', label: 'Title' },
  { key: 'description', label: 'Prompt' },
  { key: 'status', label: 'Status' },
  { key: 'agent_type', label: 'Agent Type' },
  { key: 'model', label: 'Model' },
  { key: 'priority', label: 'Priority', type: 'integer' },
  { key: 'codebase_id', label: 'Codebase ID' },
  { key: 'tags', label: 'Tags', list: true },
  { key: 'created_at', label: 'Created At', type: 'datetime' },
  { key: 'started_at', label: 'Started At', type: 'datetime' },
  { key: 'completed_at', label: 'Completed At', type: 'datetime' },
  { key: 'runtime_seconds', label: 'Runtime (Seconds)', type: 'number' },
  { key: 'result', label: 'Result' },
  { key: 'result_summary', label: 'Result Summary' },
  { key: 'error__code', label: 'Error Code' },
  { key: 'error__message', label: 'Error Message' },
  { key: 'required_action__id', label: 'Question ID' },
  { key: 'required_action__prompt', label: 'Question' },
  { key: 'required_action__reply_url', label: 'Reply Link' },
  { key: 'required_action__kind', label: 'Action Kind (question, approval or budget)' },
  { key: 'max_cost_usd', label: 'Max Cost (USD)', type: 'number' },
  { key: 'retry_count', label: 'Retry Count', type: 'integer' },
  { key: 'changes__additions', label: 'Lines Added', type: 'integer' },
  { key: 'changes__deletions', label: 'Lines Deleted', type: 'integer' },
  { key: 'git__branch', label: 'Git Branch' },
  { key: 'git__pr_url', label: 'Pull Request URL' },
  { key: 'usage__turns', label: 'Agent Turns', type: 'integer' },
  { key: 'usage__tool_calls', label: 'Tool Calls', type: 'integer' },
];

module.exports = { toItem, SAMPLE_TASK, sampleWith, TASK_OUTPUT_FIELDS };
