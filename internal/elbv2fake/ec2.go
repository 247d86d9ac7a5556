package elbv2fake

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

type vpc struct {
	id    string
	cidrs []netip.Prefix // IPv4 and IPv6, in the order given
}

// AddVPC creates the VPC, or replaces its CIDR blocks, with the given IPv4 and IPv6 CIDRs (e.g.
// "10.0.0.0/16", "2600:1f18:1234:5600::/56"). RegisterTargets decides inside / outside the VPC by them.
func (s *Server) AddVPC(vpcID string, cidrs ...string) error {
	if vpcID == "" {
		return fmt.Errorf("elbv2fake: AddVPC: empty VPC ID")
	}
	ps := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("elbv2fake: AddVPC %s: %w", vpcID, err)
		}
		ps = append(ps, p.Masked())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.vpc(vpcID); v != nil {
		v.cidrs = ps
		return nil
	}
	s.vpcs = append(s.vpcs, &vpc{id: vpcID, cidrs: ps})
	return nil
}

// vpc finds a VPC by ID. Called with s.mu held.
func (s *Server) vpc(id string) *vpc {
	return first(s.vpcs, func(v *vpc) bool { return v.id == id })
}

// newVPCID makes an ID in AWS's format (vpc- and 17 hex digits). Called with s.mu held.
func (s *Server) newVPCID() string { return fmt.Sprintf("vpc-%017x", s.nextID()) }

type cidrState struct {
	State string `xml:"state"`
}

type xmlCidrAssoc struct {
	AssociationID  string    `xml:"associationId"`
	CidrBlock      string    `xml:"cidrBlock"`
	CidrBlockState cidrState `xml:"cidrBlockState"`
}

type xmlIpv6CidrAssoc struct {
	AssociationID      string    `xml:"associationId"`
	Ipv6CidrBlock      string    `xml:"ipv6CidrBlock"`
	Ipv6CidrBlockState cidrState `xml:"ipv6CidrBlockState"`
	NetworkBorderGroup string    `xml:"networkBorderGroup"`
	Ipv6Pool           string    `xml:"ipv6Pool"`
}

type xmlVpc struct {
	VpcID                       string             `xml:"vpcId"`
	OwnerID                     string             `xml:"ownerId"`
	State                       string             `xml:"state"`
	CidrBlock                   string             `xml:"cidrBlock,omitempty"`
	CidrBlockAssociationSet     []xmlCidrAssoc     `xml:"cidrBlockAssociationSet>item"`
	Ipv6CidrBlockAssociationSet []xmlIpv6CidrAssoc `xml:"ipv6CidrBlockAssociationSet>item"`
	InstanceTenancy             string             `xml:"instanceTenancy"`
	IsDefault                   bool               `xml:"isDefault"`
}

type xmlVpcSet struct {
	Items []xmlVpc `xml:"item"`
}

func (s *Server) vpcXML(v *vpc) xmlVpc {
	x := xmlVpc{VpcID: v.id, OwnerID: s.opts.AccountID, State: "available", InstanceTenancy: "default"}
	suffix := strings.TrimPrefix(v.id, "vpc-")
	for i, p := range v.cidrs {
		assoc := fmt.Sprintf("%s-%d-%s", "vpc-cidr-assoc", i, suffix)
		if p.Addr().Is4() {
			if x.CidrBlock == "" {
				x.CidrBlock = p.String()
			}
			x.CidrBlockAssociationSet = append(x.CidrBlockAssociationSet,
				xmlCidrAssoc{AssociationID: assoc, CidrBlock: p.String(), CidrBlockState: cidrState{"associated"}})
			continue
		}
		x.Ipv6CidrBlockAssociationSet = append(x.Ipv6CidrBlockAssociationSet, xmlIpv6CidrAssoc{
			AssociationID: assoc, Ipv6CidrBlock: p.String(), Ipv6CidrBlockState: cidrState{"associated"},
			NetworkBorderGroup: s.opts.Region, Ipv6Pool: "Amazon",
		})
	}
	return x
}

func ec2Error(code, format string, args ...any) response {
	return failure(errorf(http.StatusBadRequest, code, format, args...))
}

// describeVpcs serves VpcId.N and Filter.N (vpc-id only); with neither it lists every VPC.
func (s *Server) describeVpcs(form url.Values) response {
	var ids []string
	for _, m := range indexed(form, "VpcId") {
		ids = append(ids, m[""])
	}
	var filterIDs []string
	filtered := false
	for _, f := range indexed(form, "Filter") {
		if f["Name"] != "vpc-id" {
			return ec2Error("InvalidParameterValue", "The filter '%s' is invalid; this fake supports vpc-id", f["Name"])
		}
		filtered = true
		for k, v := range f {
			if strings.HasPrefix(k, "Value.") {
				filterIDs = append(filterIDs, v)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var set xmlVpcSet
	for _, id := range ids {
		if s.vpc(id) == nil {
			return ec2Error("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", id)
		}
	}
	for _, v := range s.vpcs {
		if len(ids) > 0 && !slices.Contains(ids, v.id) || filtered && !slices.Contains(filterIDs, v.id) {
			continue
		}
		set.Items = append(set.Items, s.vpcXML(v))
	}
	return success([]ec2Field{{"vpcSet", set}})
}

// createVpcAction serves CreateVpc with CidrBlock and optional Ipv6CidrBlock, so tests can build a VPC
// through the SDK as they would against moto.
func (s *Server) createVpcAction(form url.Values) response {
	var ps []netip.Prefix
	for _, key := range []string{"CidrBlock", "Ipv6CidrBlock"} {
		c := form.Get(key)
		if c == "" {
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil || (key == "CidrBlock") != p.Addr().Is4() {
			return ec2Error("InvalidParameterValue", "Value (%s) for parameter %s is invalid", c, key)
		}
		ps = append(ps, p.Masked())
	}
	if len(ps) == 0 || !ps[0].Addr().Is4() {
		return ec2Error("MissingParameter", "The request must contain the parameter CidrBlock")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := &vpc{id: s.newVPCID(), cidrs: ps}
	s.vpcs = append(s.vpcs, v)
	return success([]ec2Field{{"vpc", s.vpcXML(v)}})
}
