"""The agent: its loop (workflow code), model-turn activities, tools, backends, prompts, the model
catalog, the transcript and the workspace with its sandbox."""
