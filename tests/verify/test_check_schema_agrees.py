"""The playbook loader and the verifier accept exactly the same check settings."""

from upgrade.config import playbook
from upgrade.run import verify


def test_every_check_and_setting_is_known_to_both() -> None:
    assert set(playbook.CHECKS) == set(verify.CHECK_NAMES)
    for name, settings in playbook.CHECKS.items():
        assert set(settings) == set(verify.SETTINGS[name]) | set(verify.COMMON_KEYS) - {"name"}, name
