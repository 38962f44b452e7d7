-- What the centers' own report forms carry beside the figures (figures 2-5, 2-9, 2-12, 2-14 of
-- the city's research report): the team (팀명), the person in charge (담당자), the indicator
-- text (실적 산정 지표: what one unit of the figure is, in the center's words) and the operating
-- form (운영형태: 상시, 정기, 수시, …), plus unique-person targets by gender (목표 남/여).
ALTER TABLE programs
    ADD COLUMN team            text NOT NULL DEFAULT '',
    ADD COLUMN manager         text NOT NULL DEFAULT '',
    ADD COLUMN indicator       text NOT NULL DEFAULT '',
    ADD COLUMN operating_form  text NOT NULL DEFAULT '';

ALTER TABLE program_targets
    ADD COLUMN unique_persons_male    integer CHECK (unique_persons_male >= 0),
    ADD COLUMN unique_persons_female  integer CHECK (unique_persons_female >= 0);
ALTER TABLE node_targets
    ADD COLUMN unique_persons_male    integer CHECK (unique_persons_male >= 0),
    ADD COLUMN unique_persons_female  integer CHECK (unique_persons_female >= 0);
