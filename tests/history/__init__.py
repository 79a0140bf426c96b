"""Tests of sim/batch/history.py and the event replays in scenarios/history/."""
