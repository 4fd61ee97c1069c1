"""Outbound HTTP shared by both remotes: sessions, deadlines, the retry policy, pacing."""
