"""Analytics: cause-effect estimates and decision tables over the marts, as pure functions of frames."""
