"""Tests of sim/scenario/ and of the shipped scenario files in scenarios/."""
