"""The agent's workspace: preparation, tool calls, checkpoints and publishing (activities), the file
tools, git and the bubblewrap sandbox."""
