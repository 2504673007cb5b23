"""Protocol views: tasks as the A2A protocol sees them, and A2A push-notification configs."""
