--
-- PostgreSQL database dump
--

\restrict Pd0wdhLHWj7RSiFO9cMC8E44y4vccPCRGQjdxhduYuV1zlyNTVVsTdPE3mucAy5

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET transaction_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: scenario_label(bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.scenario_label(s bigint) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    AS $$
begin
  -- 'Scenario 7'; used by the exports
  return 'Scenario ' || s;
end;
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: capabilities; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.capabilities (
    id bigint NOT NULL,
    organization_id bigint NOT NULL,
    name character varying(255) NOT NULL,
    discovered_in_scenario_id bigint,
    created_at timestamp(0) without time zone,
    updated_at timestamp(0) without time zone
);


--
-- Name: capabilities_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.capabilities_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: capabilities_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.capabilities_id_seq OWNED BY public.capabilities.id;


--
-- Name: capability_competencies; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.capability_competencies (
    id bigint NOT NULL,
    scenario_id bigint NOT NULL,
    capability_id bigint NOT NULL,
    competency_id bigint NOT NULL,
    required_level integer,
    created_at timestamp(0) without time zone,
    updated_at timestamp(0) without time zone
);


--
-- Name: capability_competencies_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.capability_competencies_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: capability_competencies_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.capability_competencies_id_seq OWNED BY public.capability_competencies.id;


--
-- Name: competencies; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.competencies (
    id bigint NOT NULL,
    organization_id bigint NOT NULL,
    name character varying(255) NOT NULL,
    description text,
    status character varying(255) DEFAULT 'active'::character varying NOT NULL,
    created_at timestamp(0) without time zone,
    updated_at timestamp(0) without time zone
);


--
-- Name: competencies_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.competencies_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: competencies_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.competencies_id_seq OWNED BY public.competencies.id;


--
-- Name: competency_versions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.competency_versions (
    id bigint NOT NULL,
    organization_id bigint NOT NULL,
    competency_id bigint,
    version_group_id uuid,
    name character varying(255) NOT NULL,
    description text,
    effective_from date,
    evolution_state character varying(255) DEFAULT 'stable'::character varying NOT NULL,
    obsolescence_reason text,
    metadata json,
    created_by bigint,
    created_at timestamp(0) without time zone,
    updated_at timestamp(0) without time zone,
    CONSTRAINT competency_versions_evolution_state_check CHECK (((evolution_state)::text = ANY ((ARRAY['transformed'::character varying, 'obsolescent'::character varying, 'new_embryo'::character varying, 'stable'::character varying])::text[])))
);


--
-- Name: COLUMN competency_versions.metadata; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.competency_versions.metadata IS 'Who wrote the row: {"source":"backfill","scenario_id":N}; the app''s own writers set source too';


--
-- Name: competency_versions_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.competency_versions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: competency_versions_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.competency_versions_id_seq OWNED BY public.competency_versions.id;


--
-- Name: migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.migrations (
    id integer NOT NULL,
    migration character varying(255) NOT NULL,
    batch integer NOT NULL
);


--
-- Name: migrations_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.migrations_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: migrations_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.migrations_id_seq OWNED BY public.migrations.id;


--
-- Name: role_versions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.role_versions (
    id bigint NOT NULL,
    organization_id bigint NOT NULL,
    role_id bigint,
    version_group_id uuid,
    name character varying(255) NOT NULL,
    description text,
    effective_from date,
    evolution_state character varying(255) DEFAULT 'stable'::character varying NOT NULL,
    metadata json,
    created_by bigint,
    created_at timestamp(0) without time zone,
    updated_at timestamp(0) without time zone,
    CONSTRAINT role_versions_evolution_state_check CHECK (((evolution_state)::text = ANY ((ARRAY['transformed'::character varying, 'obsolescent'::character varying, 'new_embryo'::character varying, 'stable'::character varying])::text[])))
);


--
-- Name: role_versions_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.role_versions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: role_versions_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.role_versions_id_seq OWNED BY public.role_versions.id;


--
-- Name: roles; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.roles (
    id bigint NOT NULL,
    organization_id bigint NOT NULL,
    name character varying(255) NOT NULL,
    description text,
    created_at timestamp(0) without time zone,
    updated_at timestamp(0) without time zone
);


--
-- Name: roles_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.roles_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: roles_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.roles_id_seq OWNED BY public.roles.id;


--
-- Name: scenario_capabilities; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.scenario_capabilities (
    id bigint NOT NULL,
    scenario_id bigint NOT NULL,
    capability_id bigint NOT NULL,
    strategic_role character varying(255) DEFAULT 'target'::character varying NOT NULL,
    strategic_weight smallint DEFAULT '10'::smallint NOT NULL,
    priority smallint DEFAULT '1'::smallint NOT NULL,
    rationale text,
    required_level integer DEFAULT 3 NOT NULL,
    is_critical boolean DEFAULT false NOT NULL,
    created_at timestamp(0) without time zone,
    updated_at timestamp(0) without time zone,
    position_x double precision,
    position_y double precision,
    is_fixed boolean DEFAULT false NOT NULL
);


--
-- Name: scenario_capabilities_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.scenario_capabilities_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: scenario_capabilities_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.scenario_capabilities_id_seq OWNED BY public.scenario_capabilities.id;


--
-- Name: scenario_capabilities id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenario_capabilities ALTER COLUMN id SET DEFAULT nextval('public.scenario_capabilities_id_seq'::regclass);


--
-- Name: scenario_capabilities scenario_capabilities_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenario_capabilities
    ADD CONSTRAINT scenario_capabilities_pkey PRIMARY KEY (id);


--
-- Name: scenario_capabilities scenario_capabilities_scenario_id_capability_id_unique; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenario_capabilities
    ADD CONSTRAINT scenario_capabilities_scenario_id_capability_id_unique UNIQUE (scenario_id, capability_id);


--
-- Name: scenario_generations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.scenario_generations (
    id bigint NOT NULL,
    organization_id bigint NOT NULL,
    status character varying(255) DEFAULT 'queued'::character varying NOT NULL,
    metadata json,
    created_at timestamp(0) without time zone,
    updated_at timestamp(0) without time zone,
    scenario_id bigint,
    CONSTRAINT scenario_generations_status_check CHECK (((status)::text = ANY ((ARRAY['queued'::character varying, 'processing'::character varying, 'complete'::character varying, 'failed'::character varying])::text[])))
);


--
-- Name: scenario_generations_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.scenario_generations_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: scenario_generations_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.scenario_generations_id_seq OWNED BY public.scenario_generations.id;


--
-- Name: scenario_roles; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.scenario_roles (
    id bigint NOT NULL,
    scenario_id bigint NOT NULL,
    role_id bigint NOT NULL,
    role_change character varying(255),
    created_at timestamp(0) without time zone,
    updated_at timestamp(0) without time zone
);


--
-- Name: scenario_roles_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.scenario_roles_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: scenario_roles_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.scenario_roles_id_seq OWNED BY public.scenario_roles.id;


--
-- Name: scenarios; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.scenarios (
    id bigint NOT NULL,
    organization_id bigint NOT NULL,
    name character varying(255) NOT NULL,
    created_at timestamp(0) without time zone,
    updated_at timestamp(0) without time zone,
    source_generation_id bigint
);


--
-- Name: scenarios_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.scenarios_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: scenarios_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.scenarios_id_seq OWNED BY public.scenarios.id;


--
-- Name: capabilities id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.capabilities ALTER COLUMN id SET DEFAULT nextval('public.capabilities_id_seq'::regclass);


--
-- Name: capability_competencies id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.capability_competencies ALTER COLUMN id SET DEFAULT nextval('public.capability_competencies_id_seq'::regclass);


--
-- Name: competencies id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.competencies ALTER COLUMN id SET DEFAULT nextval('public.competencies_id_seq'::regclass);


--
-- Name: competency_versions id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.competency_versions ALTER COLUMN id SET DEFAULT nextval('public.competency_versions_id_seq'::regclass);


--
-- Name: migrations id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.migrations ALTER COLUMN id SET DEFAULT nextval('public.migrations_id_seq'::regclass);


--
-- Name: role_versions id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.role_versions ALTER COLUMN id SET DEFAULT nextval('public.role_versions_id_seq'::regclass);


--
-- Name: roles id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.roles ALTER COLUMN id SET DEFAULT nextval('public.roles_id_seq'::regclass);


--
-- Name: scenario_generations id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenario_generations ALTER COLUMN id SET DEFAULT nextval('public.scenario_generations_id_seq'::regclass);


--
-- Name: scenario_roles id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenario_roles ALTER COLUMN id SET DEFAULT nextval('public.scenario_roles_id_seq'::regclass);


--
-- Name: scenarios id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenarios ALTER COLUMN id SET DEFAULT nextval('public.scenarios_id_seq'::regclass);


--
-- Name: capabilities capabilities_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.capabilities
    ADD CONSTRAINT capabilities_pkey PRIMARY KEY (id);


--
-- Name: capability_competencies capability_competencies_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.capability_competencies
    ADD CONSTRAINT capability_competencies_pkey PRIMARY KEY (id);


--
-- Name: capability_competencies capability_competencies_scenario_capability_competency_unique; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.capability_competencies
    ADD CONSTRAINT capability_competencies_scenario_capability_competency_unique UNIQUE (scenario_id, capability_id, competency_id);


--
-- Name: competencies competencies_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.competencies
    ADD CONSTRAINT competencies_pkey PRIMARY KEY (id);


--
-- Name: competency_versions competency_versions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.competency_versions
    ADD CONSTRAINT competency_versions_pkey PRIMARY KEY (id);


--
-- Name: migrations migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.migrations
    ADD CONSTRAINT migrations_pkey PRIMARY KEY (id);


--
-- Name: role_versions role_versions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.role_versions
    ADD CONSTRAINT role_versions_pkey PRIMARY KEY (id);


--
-- Name: roles roles_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.roles
    ADD CONSTRAINT roles_pkey PRIMARY KEY (id);


--
-- Name: scenario_generations scenario_generations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenario_generations
    ADD CONSTRAINT scenario_generations_pkey PRIMARY KEY (id);


--
-- Name: scenario_generations scenario_generations_scenario_id_unique; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenario_generations
    ADD CONSTRAINT scenario_generations_scenario_id_unique UNIQUE (scenario_id);


--
-- Name: scenario_roles scenario_roles_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenario_roles
    ADD CONSTRAINT scenario_roles_pkey PRIMARY KEY (id);


--
-- Name: scenario_roles scenario_roles_scenario_id_role_id_unique; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenario_roles
    ADD CONSTRAINT scenario_roles_scenario_id_role_id_unique UNIQUE (scenario_id, role_id);


--
-- Name: scenarios scenarios_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenarios
    ADD CONSTRAINT scenarios_pkey PRIMARY KEY (id);


--
-- Name: capability_competencies_competency_id_index; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX capability_competencies_competency_id_index ON public.capability_competencies USING btree (competency_id);


--
-- Name: competency_versions_competency_id_index; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX competency_versions_competency_id_index ON public.competency_versions USING btree (competency_id);


--
-- Name: competency_versions_marked_index; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX competency_versions_marked_index ON public.competency_versions USING btree ((((metadata)::jsonb ? 'migration'::text))) WHERE (metadata IS NOT NULL);


--
-- Name: role_versions_role_id_index; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX role_versions_role_id_index ON public.role_versions USING btree (role_id);


--
-- Name: scenario_generations_organization_id_index; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX scenario_generations_organization_id_index ON public.scenario_generations USING btree (organization_id);


--
-- Name: scenario_roles_role_id_index; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX scenario_roles_role_id_index ON public.scenario_roles USING btree (role_id);


--
-- Name: scenarios_source_generation_id_index; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX scenarios_source_generation_id_index ON public.scenarios USING btree (source_generation_id);


--
-- Name: capabilities capabilities_discovered_in_scenario_id_foreign; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.capabilities
    ADD CONSTRAINT capabilities_discovered_in_scenario_id_foreign FOREIGN KEY (discovered_in_scenario_id) REFERENCES public.scenarios(id) ON DELETE SET NULL;


--
-- Name: capability_competencies capability_competencies_capability_id_foreign; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.capability_competencies
    ADD CONSTRAINT capability_competencies_capability_id_foreign FOREIGN KEY (capability_id) REFERENCES public.capabilities(id) ON DELETE CASCADE;


--
-- Name: capability_competencies capability_competencies_competency_id_foreign; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.capability_competencies
    ADD CONSTRAINT capability_competencies_competency_id_foreign FOREIGN KEY (competency_id) REFERENCES public.competencies(id) ON DELETE CASCADE;


--
-- Name: capability_competencies capability_competencies_scenario_id_foreign; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.capability_competencies
    ADD CONSTRAINT capability_competencies_scenario_id_foreign FOREIGN KEY (scenario_id) REFERENCES public.scenarios(id) ON DELETE CASCADE;


--
-- Name: competency_versions competency_versions_competency_id_foreign; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.competency_versions
    ADD CONSTRAINT competency_versions_competency_id_foreign FOREIGN KEY (competency_id) REFERENCES public.competencies(id) ON DELETE SET NULL;


--
-- Name: role_versions role_versions_role_id_foreign; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.role_versions
    ADD CONSTRAINT role_versions_role_id_foreign FOREIGN KEY (role_id) REFERENCES public.roles(id) ON DELETE SET NULL;


--
-- Name: scenario_generations scenario_generations_scenario_id_foreign; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenario_generations
    ADD CONSTRAINT scenario_generations_scenario_id_foreign FOREIGN KEY (scenario_id) REFERENCES public.scenarios(id) ON DELETE SET NULL;


--
-- Name: scenario_roles scenario_roles_role_id_foreign; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenario_roles
    ADD CONSTRAINT scenario_roles_role_id_foreign FOREIGN KEY (role_id) REFERENCES public.roles(id) ON DELETE CASCADE;


--
-- Name: scenario_roles scenario_roles_scenario_id_foreign; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenario_roles
    ADD CONSTRAINT scenario_roles_scenario_id_foreign FOREIGN KEY (scenario_id) REFERENCES public.scenarios(id) ON DELETE CASCADE;


--
-- Name: scenarios scenarios_source_generation_id_foreign; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenarios
    ADD CONSTRAINT scenarios_source_generation_id_foreign FOREIGN KEY (source_generation_id) REFERENCES public.scenario_generations(id) ON DELETE SET NULL;


--
-- Name: scenario_capabilities scenario_capabilities_capability_id_foreign; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenario_capabilities
    ADD CONSTRAINT scenario_capabilities_capability_id_foreign FOREIGN KEY (capability_id) REFERENCES public.capabilities(id) ON DELETE CASCADE;


--
-- Name: scenario_capabilities scenario_capabilities_scenario_id_foreign; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.scenario_capabilities
    ADD CONSTRAINT scenario_capabilities_scenario_id_foreign FOREIGN KEY (scenario_id) REFERENCES public.scenarios(id) ON DELETE CASCADE;


--
-- PostgreSQL database dump complete
--

\unrestrict Pd0wdhLHWj7RSiFO9cMC8E44y4vccPCRGQjdxhduYuV1zlyNTVVsTdPE3mucAy5

--
-- PostgreSQL database dump
--

\restrict bKpIcb2WjddbZLvq79sR8oXUs2rgDmAiBwflJiDahaHj0cEFLhKjPuRGi5WYCMl

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET transaction_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Data for Name: migrations; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.migrations (id, migration, batch) FROM stdin;
1	0001_01_00_000000_create_organizations_table	1
2	0001_01_01_000000_create_users_table	1
3	2026_01_06_190000_create_scenarios_table	1
4	2026_01_12_192910_create_capabilities_table	1
5	2026_01_12_192940_create_competencies_table	1
6	2026_01_12_193126_create_scenario_roles_table	1
7	2026_01_23_121000_create_capability_competencies_table	1
8	2026_02_04_100000_create_competency_versions_table	1
9	2026_02_04_100100_create_role_versions_table	1
10	2026_02_06_180000_create_scenario_generations_table	2
11	2026_02_10_120000_add_scenario_id_to_scenario_generations	2
\.


--
-- Name: migrations_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.migrations_id_seq', 11, true);


--
-- PostgreSQL database dump complete
--

\unrestrict bKpIcb2WjddbZLvq79sR8oXUs2rgDmAiBwflJiDahaHj0cEFLhKjPuRGi5WYCMl

