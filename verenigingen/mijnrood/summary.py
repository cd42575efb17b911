"""Totals over a validated export, shared by the terminal report, --json and the importer."""

from dataclasses import dataclass, field

from verenigingen.mijnrood.rows import Problem, RowResult


@dataclass
class ValidationSummary:
    rows: int = 0
    valid: int = 0
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)  # rows deliberately not imported

    @property
    def invalid(self) -> int:
        return self.rows - self.valid - len(self.skipped)

    def add(self, result: RowResult) -> None:
        self.rows += 1
        self.valid += result.valid
        self.errors.extend(result.errors)
        self.warnings.extend(result.warnings)
        if result.skipped:
            self.skipped.append(result.skipped)

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "valid": self.valid,
            "invalid": self.invalid,
            "errors": [problem.as_dict() for problem in self.errors],
            "warnings": [problem.as_dict() for problem in self.warnings],
            "skipped": [{"row": p.row, "code": p.code, "message": p.message} for p in self.skipped],
        }
